import { ErrorCodes, PvError } from '@pagevault/errors';
import { checkTag, keys } from './keys';
import type { Manifest } from './manifest';
import type { TenantStore } from './tenant-store';

/** Which snapshots a listing or a "latest" wants. */
export interface SnapshotFilter {
  host?: string;
  pid?: number;
  tag?: string;
}

export type TaggedManifest = Manifest & { tags: string[] };

/**
 * Tags label committed snapshots: an empty object per (tag, snapshot), written after the manifest, so
 * tagging never rewrites a manifest (everything in the bucket is write-once) and one LIST finds them all.
 */
export async function addTags(t: TenantStore, id: string, tags: string[]): Promise<void> {
  for (const tag of tags) checkTag(tag);
  await t.getManifest(id); // PV_UNKNOWN_SNAPSHOT before anything is written
  for (const tag of tags) await t.store.put(keys.tag(t.tenant, tag, id), new Uint8Array(0));
}

export async function removeTags(t: TenantStore, id: string, tags: string[]): Promise<void> {
  for (const tag of tags) await t.store.delete(keys.tag(t.tenant, checkTag(tag), id));
}

/** Snapshot id → its tags, sorted. */
export async function readTags(t: TenantStore): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  const prefix = keys.tags(t.tenant);
  for await (const o of t.store.list(prefix)) {
    const [tag, id] = o.key.slice(prefix.length).split('/');
    if (!tag || !id) continue;
    (out.get(id) ?? out.set(id, []).get(id)!).push(tag);
  }
  for (const v of out.values()) v.sort();
  return out;
}

/**
 * The tenant's snapshots that pass the filter, oldest first, with their tags. A damaged manifest fails the
 * listing, unless `onUnreadable` takes it (it is skipped then).
 */
export async function listSnapshots(t: TenantStore, f: SnapshotFilter = {}, onUnreadable?: (e: PvError) => void): Promise<TaggedManifest[]> {
  const [{ manifests: all, unreadable }, tags] = await Promise.all([t.readManifests(), readTags(t)]);
  for (const e of unreadable) {
    if (!onUnreadable) throw e;
    onUnreadable(e);
  }
  return all
    .map((m) => ({ ...m, tags: tags.get(m.snapshotId) ?? [] }))
    .filter((m) => (f.host === undefined || m.host === f.host) && (f.pid === undefined || m.pid === f.pid) && (f.tag === undefined || m.tags.includes(f.tag)));
}

/**
 * A filter from text values (CLI options, HTTP query parameters, "latest:" terms), each checked: a host
 * name, a positive pid, a valid tag. Absent values do not filter; an empty one (`?pid=`) is refused, never
 * taken for no filter (`latest/stream?pid=` served another process's stream).
 */
export function snapshotFilter(q: { host?: string | undefined; pid?: string | undefined; tag?: string | undefined }): SnapshotFilter {
  for (const [k, v] of Object.entries(q)) {
    // A query string that repeats a key (?host=a&host=b) arrives as a list: one value each, or it means nothing.
    if (v !== undefined && typeof v !== 'string') throw new PvError(ErrorCodes.INVALID_ARGUMENT, `${k} must be given once, as one value, not ${JSON.stringify(v)}`);
    if (v === '') throw new PvError(ErrorCodes.INVALID_ARGUMENT, `${k} is empty: give a value, or leave it out to not filter by ${k}`);
  }
  if (q.pid && !(/^[1-9][0-9]*$/.test(q.pid) && Number.isSafeInteger(Number(q.pid)))) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `pid must be a positive integer, not ${JSON.stringify(q.pid)}`);
  return { ...(q.host ? { host: q.host } : {}), ...(q.pid ? { pid: Number(q.pid) } : {}), ...(q.tag ? { tag: checkTag(q.tag) } : {}) };
}

/**
 * Parses "latest[:key=value,...]" (keys host, pid, tag), the same filters as separate values. Returns
 * undefined for anything else (an id or an id prefix).
 */
export function parseLatest(ref: string): SnapshotFilter | undefined {
  if (ref !== 'latest' && !ref.startsWith('latest:')) return undefined;
  const q: Record<string, string> = {};
  const parts = ref.slice('latest:'.length).split(',').filter(Boolean);
  if (ref !== 'latest' && parts.length === 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `snapshot reference ${JSON.stringify(ref)} names no filter: say latest, or latest:host=<name>,pid=<n>,tag=<tag>`);
  for (const part of parts) {
    const eq = part.indexOf('=');
    const k = part.slice(0, eq);
    if (eq < 1 || !['host', 'pid', 'tag'].includes(k) || eq === part.length - 1) {
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `snapshot reference ${JSON.stringify(ref)}: ${JSON.stringify(part)} is not host=<name>, pid=<n> or tag=<tag>`);
    }
    if (k in q) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `snapshot reference ${JSON.stringify(ref)} names ${k} twice`);
    q[k] = part.slice(eq + 1);
  }
  return snapshotFilter(q);
}

/**
 * Resolves a snapshot reference: a full id, a unique id prefix, or "latest" optionally narrowed
 * ("latest:host=web1,tag=nightly"; `filter` narrows it further, and must not contradict it). An id or
 * prefix must pass `filter` too. Unknown, ambiguous or filtered out: PV_UNKNOWN_SNAPSHOT. A damaged
 * manifest fails "latest" unless `onUnreadable` takes it (then the latest readable snapshot is meant).
 */
export async function resolveSnapshot(t: TenantStore, ref: string, filter: SnapshotFilter = {}, onUnreadable?: (e: PvError) => void): Promise<Manifest> {
  const latest = parseLatest(ref);
  if (latest) {
    for (const k of Object.keys(filter) as (keyof SnapshotFilter)[]) {
      if (latest[k] !== undefined && latest[k] !== filter[k]) {
        throw new PvError(ErrorCodes.INVALID_ARGUMENT, `snapshot reference ${JSON.stringify(ref)} says ${k}=${latest[k]}, the filter ${k}=${filter[k]}`);
      }
    }
    const f = { ...latest, ...filter };
    const hit = (await listSnapshots(t, f, onUnreadable)).at(-1);
    if (!hit) {
      const what = Object.entries(f).map(([k, v]) => `${k}=${v}`).join(', ');
      throw new PvError(ErrorCodes.UNKNOWN_SNAPSHOT, `no snapshot${what ? ` with ${what}` : ''} for tenant ${t.tenant}`, { details: { snapshot: ref, ...f } });
    }
    const { tags: _tags, ...m } = hit;
    return m;
  }
  const m = await byId(t, ref);
  const miss = (['host', 'pid'] as const).find((k) => filter[k] !== undefined && filter[k] !== m[k]);
  const untagged = filter.tag !== undefined && !(await t.store.head(keys.tag(t.tenant, filter.tag, m.snapshotId)));
  if (miss || untagged) {
    const why = miss ? `${miss} ${String(m[miss])}, not ${String(filter[miss])}` : `no tag ${filter.tag}`;
    throw new PvError(ErrorCodes.UNKNOWN_SNAPSHOT, `snapshot ${m.snapshotId} has ${why}`, { details: { snapshot: ref, ...filter } });
  }
  return m;
}

async function byId(t: TenantStore, ref: string): Promise<Manifest> {
  if (/^[0-9a-f]{32}$/.test(ref)) return t.getManifest(ref);
  if (!/^[0-9a-f]{1,31}$/.test(ref)) {
    // Not a reference at all (a typo, a wrong argument): the caller's mistake, not a snapshot missing.
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `${JSON.stringify(ref)} is not a snapshot id, an id prefix or latest[:host=,pid=,tag=]`, { details: { snapshot: ref } });
  }
  // A prefix needs the ids only: one LIST, then one GET of the manifest it names.
  const hits: string[] = [];
  for await (const o of t.store.list(keys.manifests(t.tenant) + ref)) hits.push(o.key.slice(keys.manifests(t.tenant).length, -'.json'.length));
  if (hits.length !== 1) {
    throw new PvError(ErrorCodes.UNKNOWN_SNAPSHOT, hits.length ? `snapshot prefix ${ref} is ambiguous` : `no snapshot ${ref} for tenant ${t.tenant}`, { details: { snapshot: ref } });
  }
  return t.getManifest(hits[0]!);
}
