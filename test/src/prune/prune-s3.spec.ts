import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_FRAME_BYTES, decodeFrame } from '@pagevault/format';
import { PageIndex, Repository, SnapshotIngest, forgetSnapshots, keys, loadIndexFile, prune, type Manifest, type TenantStore } from '@pagevault/repo';
import { restoreFrames } from '@pagevault/restore';
import { openObjectStore } from '@pagevault/runtime';
import { PAGE, randomPages, writeSnapshot, type SyntheticProcess } from '../compactor/synthetic-memory';
import { requireS3Server, s3Env, s3Store } from '../objstore/s3-env';

// forget + prune on the real S3 server (SeaweedFS locally), through the store the services open (retries,
// a bound on requests in flight). Snapshots are ingested by the compactor's SnapshotIngest; restores go
// through restoreFrames, which checks every page against its hash.
const tenant = `it-prune-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
const store = openObjectStore({ kind: 's3', ...s3Env });
const BASE = 0x7f00_0000_0000;
const shared = randomPages(200);

function process_(pid: number, own: Buffer, withShared = true): SyntheticProcess {
  const data = withShared ? Buffer.concat([shared, own]) : own;
  return { tenant, host: 'host-a', pid, cmdline: 'prune-it', startTimeMs: 1_700_000_000_000 + pid, pageSize: PAGE, vmas: [{ start: BASE, data, zeroPages: 16 }] };
}
// R: the shared pages and 800 of its own; T: the shared pages and 100 of its own; Q: 300 pages, nothing shared.
const memory = { R: process_(1, randomPages(800)), T: process_(2, randomPages(100)), Q: process_(3, randomPages(300), false) };
const snap: Partial<Record<keyof typeof memory, { manifest: Manifest; stream: Buffer; pack: string }>> = {};
let stale: TenantStore;

async function keysUnder(prefix: string): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for await (const o of store.list(prefix)) out.set(o.key, o.size);
  return out;
}

async function restore(t: TenantStore, id: string): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const f of restoreFrames(t, await t.getManifest(id))) out.push(f.raw);
  return Buffer.concat(out);
}

/** Packs named by the tenant's index files, as a restorer rebuilding its index sees them. */
async function indexedPacks(): Promise<Set<string>> {
  const idx = new PageIndex();
  for (const k of (await keysUnder(keys.indexes(tenant))).keys()) loadIndexFile(await store.get(k), k, idx);
  return new Set(idx.packs.map((sha) => keys.pack(tenant, sha)));
}

beforeAll(async () => {
  await requireS3Server(s3Store());
  const repo = new Repository(store);
  for (const name of ['R', 'T', 'Q'] as const) {
    const before = await keysUnder(keys.packs(tenant));
    const s = writeSnapshot(memory[name]);
    const ingest = new SnapshotIngest(repo, s.snapshotId);
    let manifest: Manifest | undefined;
    for (const f of s.frames) manifest = (await ingest.accept(decodeFrame(f, DEFAULT_MAX_FRAME_BYTES))) ?? manifest;
    const added = [...(await keysUnder(keys.packs(tenant))).keys()].filter((k) => !before.has(k));
    expect(added.length, `packs written by snapshot ${name}`).toBe(1);
    snap[name] = { manifest: manifest!, stream: s.stream, pack: added[0]! };
  }
  expect(snap.T!.manifest.counts.newPages).toBe(100); // the shared pages deduplicated against R's pack
  stale = await repo.tenant(tenant); // a reader whose index was loaded before the prune
}, 120_000);

afterAll(async () => {
  for (const k of (await keysUnder(`t/${tenant}/`)).keys()) await store.delete(k);
}, 60_000);

describe('forget and prune on S3', () => {
  it('S3 dates every object: within the default grace prune deletes nothing that was just written', async () => {
    await forgetSnapshots(stale, [snap.R!.manifest.snapshotId, snap.Q!.manifest.snapshotId]);
    expect((await stale.listManifests()).map((m) => m.snapshotId)).toEqual([snap.T!.manifest.snapshotId]);
    const before = await keysUnder(`t/${tenant}/`);
    const r = await prune(store, tenant);
    expect(r.packs).toMatchObject({ deleted: 0, repacked: 0, spared: 2 });
    expect(r.mapNodes.deleted).toBe(0);
    expect(r.mapNodes.spared).toBeGreaterThan(0);
    expect(await keysUnder(`t/${tenant}/`)).toEqual(before);
  });

  it('a dry run reports the dead pack and the mostly dead one, and changes nothing', async () => {
    const before = await keysUnder(`t/${tenant}/`);
    const r = await prune(store, tenant, { graceMs: 0, dryRun: true });
    expect(r).toMatchObject({ dryRun: true, snapshots: 1, packs: { deleted: 1, repacked: 1 }, pagesRepacked: 200 });
    expect(r.bytes.freed).toBeGreaterThan(1000 * PAGE);
    expect(await keysUnder(`t/${tenant}/`)).toEqual(before);
  });

  it('deletes the dead pack, repacks the mostly dead one; what is left restores byte-identical, also through an old index', async () => {
    const r = await prune(store, tenant, { graceMs: 0 });
    expect(r).toMatchObject({ dryRun: false, snapshots: 1, packs: { deleted: 1, repacked: 1, written: 1 }, pagesRepacked: 200 });
    expect(await store.head(snap.R!.pack)).toBeUndefined();
    expect(await store.head(snap.Q!.pack)).toBeUndefined();
    const packs = await keysUnder(keys.packs(tenant));
    expect(packs.size).toBe(2);
    expect(await indexedPacks()).toEqual(new Set(packs.keys()));
    let stored = 0;
    for (const p of [keys.packs(tenant), keys.indexes(tenant), keys.mapNodes(tenant)]) for (const s of (await keysUnder(p)).values()) stored += s;
    expect(r.bytes.after).toBe(stored);
    expect(r.bytes.freed).toBeGreaterThan(1000 * PAGE);

    const fresh = await new Repository(store).tenant(tenant);
    expect((await restore(fresh, snap.T!.manifest.snapshotId)).equals(snap.T!.stream)).toBe(true);
    expect((await restore(stale, snap.T!.manifest.snapshotId)).equals(snap.T!.stream)).toBe(true);
  });

  it('a second prune finds nothing left to do', async () => {
    const r = await prune(store, tenant, { graceMs: 0 });
    expect(r).toMatchObject({ packs: { deleted: 0, repacked: 0 }, mapNodes: { deleted: 0 }, bytes: { freed: 0 } });
  });
});
