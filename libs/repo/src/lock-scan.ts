import { createHash } from 'node:crypto';
import { readFileSync, readlinkSync } from 'node:fs';
import { forEachLimited, type ObjectStore } from '@pagevault/objstore';
import { basename, keys } from './keys';

export type LockKind = 'shared' | 'exclusive';

/** The JSON body of a lock object: who holds it, for people and messages. Liveness comes from the listing. */
export interface LockRecord {
  kind: LockKind;
  id: string;
  host: string;
  pid: number;
  createdMs: number;
  refreshedMs: number;
  /**
   * Who the holder is on its kernel (when it recorded itself: the lock's pid is its own): a process on
   * the same boot and in the same pid namespace can then tell that the holder has died.
   */
  holder?: HolderIdentity;
}

/** A process as the kernel knows it: its boot, its pid namespace and its start time (clock ticks after boot). */
export interface HolderIdentity {
  bootId: string;
  pidNs: string;
  startTicks: string;
}

let own: HolderIdentity | null | undefined;

/** This process's identity, or undefined where /proc does not tell it. */
export function ownIdentity(): HolderIdentity | undefined {
  if (own === undefined) {
    try {
      own = { bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(), pidNs: readlinkSync('/proc/self/ns/pid'), startTicks: startTicksOf('self')! };
    } catch {
      own = null;
    }
  }
  return own ?? undefined;
}

/**
 * A short name (8 hex digits) for this boot and pid namespace: the processes that share it judge each
 * other's pids (processGone), as holderGone does for locks. Undefined where /proc does not tell it.
 */
export function identityScope(): string | undefined {
  const me = ownIdentity();
  return me && (scope ??= createHash('sha256').update(`${me.bootId}\n${me.pidNs}`).digest('hex').slice(0, 8));
}

let scope: string | undefined;

/**
 * Whether the process that was `pid` with start time `startTicks` in this scope has died (its pid free or
 * reused). A process whose /proc entry this one may not read (hidepid) is taken as alive unless kill(0)
 * says there is no such process.
 */
export function processGone(pid: number, startTicks: string): boolean {
  const now = startTicksOf(pid);
  if (now !== undefined) return now !== startTicks;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Field 22 of /proc/PID/stat (after the command name, which may hold spaces), or undefined if there is no such process. */
function startTicksOf(pid: number | 'self'): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/**
 * Whether a lock's holder has certainly died: it recorded itself on this boot and in our pid
 * namespace, and its pid is now free or another process's (a later start time). Holders elsewhere,
 * and records without an identity, are never judged: their locks go stale with time.
 */
export function holderGone(r: Partial<LockRecord>, me = ownIdentity()): boolean {
  const h = r.holder;
  if (!me || !h || typeof r.pid !== 'number' || h.bootId !== me.bootId || h.pidNs !== me.pidNs) return false;
  return processGone(r.pid, h.startTicks);
}

/**
 * The locks among `locks` whose holders are alive, as far as this host can tell; the lock of a holder
 * that died on this host (killed mid-snapshot, mid-prune) is deleted instead of blocking for the
 * staleness. One GET a lock: only for locks that stand in the caller's way.
 */
export async function withoutDeadHolders(store: ObjectStore, locks: LockEntry[]): Promise<LockEntry[]> {
  if (locks.length === 0 || !ownIdentity()) return locks;
  const gone = new Set<string>();
  await forEachLimited(locks, 8, async (l) => {
    let r: Partial<LockRecord>;
    try {
      r = JSON.parse((await store.get(l.key)).toString('utf8')) as Partial<LockRecord>;
    } catch {
      return; // released meanwhile (the next LIST shows it), or unreadable: judged by age
    }
    if (!holderGone(r)) return;
    await store.delete(l.key).catch(() => undefined);
    gone.add(l.key);
  });
  return locks.filter((l) => !gone.has(l.key));
}

/** A lock object as one LIST shows it. */
export interface LockEntry {
  key: string;
  kind: LockKind;
  id: string;
  /** Since the object was last written, by the store's clock (S3 LastModified, a file's mtime) against ours. */
  ageMs: number;
}

export interface LockScan {
  /** Locks written less than staleMs ago: held. */
  live: LockEntry[];
  /** Locks not refreshed for staleMs: their holder is gone (or lost them); everyone ignores them. */
  stale: LockEntry[];
  /** The prune markers' names, sorted: they change with every prune that deletes anything. */
  marks: string[];
}

/** The prune generation a scan saw: its markers' names joined. */
export function pruneGeneration(scan: LockScan): string {
  return scan.marks.join(',');
}

const LOCK = /^(shared|exclusive)-([0-9a-z]+)$/;
const MARK = /^pruned-/;

/**
 * One LIST of the tenant's lock folder: the locks, live or stale, and the prune generation. A name this
 * version does not know is taken for an exclusive lock (a newer version's lock must not be ignored); it
 * goes stale like any other. A store that does not date its objects makes every lock live.
 */
export async function scanLocks(store: ObjectStore, tenant: string, staleMs: number, nowMs = Date.now()): Promise<LockScan> {
  const scan: LockScan = { live: [], stale: [], marks: [] };
  for await (const o of store.list(keys.locks(tenant))) {
    const name = basename(o.key);
    if (MARK.test(name)) {
      scan.marks.push(name);
      continue;
    }
    const m = LOCK.exec(name);
    const ageMs = o.modifiedMs === undefined ? 0 : Math.max(0, nowMs - o.modifiedMs);
    const entry: LockEntry = { key: o.key, kind: (m?.[1] as LockKind | undefined) ?? 'exclusive', id: m?.[2] ?? name, ageMs };
    (ageMs >= staleMs ? scan.stale : scan.live).push(entry);
  }
  scan.marks.sort();
  return scan;
}

/** "shared lock t/acme/locks/shared-… held by host h1 pid 4242, taken 12 s ago, refreshed 3 s ago", one per lock. */
export async function describeLocks(store: ObjectStore, locks: LockEntry[]): Promise<string[]> {
  const out: string[] = new Array(locks.length);
  await forEachLimited(locks.map((l, i) => ({ l, i })), 8, async ({ l, i }) => {
    const s = (ms: number) => `${Math.round(ms / 1000)} s`;
    let who = '';
    try {
      const r = JSON.parse((await store.get(l.key)).toString('utf8')) as Partial<LockRecord>;
      who = ` held by host ${r.host} pid ${r.pid}` + (typeof r.createdMs === 'number' ? `, taken ${s(Date.now() - r.createdMs)} ago` : '');
    } catch {
      // released meanwhile, or not ours to read: the key and its age still say enough
    }
    out[i] = `${l.kind} lock ${l.key}${who}, refreshed ${s(l.ageMs)} ago`;
  });
  return out;
}
