import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { DirectoryObjectStore, type ObjectInfo, type ObjectStore } from '@pagevault/objstore';
import { lockExclusive } from './exclusive-lock';
import { forgetSnapshots } from './forget';
import { SnapshotIngest } from './ingest';
import { newLockId } from './held-lock';
import { keys } from './keys';
import { ownIdentity, type LockRecord } from './lock-scan';
import type { Manifest } from './manifest';
import { prune } from './prune';
import { Repository } from './repository';
import { BASE, PS, ingest, readBack, snapshotFrames } from './test-helpers';

const MIN = 60_000;

/** The directory store, counting requests on the lock folder; lock PUTs wait while `blocked`. */
class LockWatch implements ObjectStore {
  readonly ops: string[] = [];
  blocked: Promise<void> | undefined;
  constructor(private readonly inner: DirectoryObjectStore) {}
  get description() {
    return this.inner.description;
  }
  private note(op: string, key: string) {
    if (key.includes('/locks/')) this.ops.push(op);
  }
  async put(key: string, body: Uint8Array) {
    this.note('PUT', key);
    if (key.includes('/locks/')) await this.blocked;
    return this.inner.put(key, body);
  }
  get = (k: string) => this.inner.get(k);
  getRange = (k: string, o: number, l: number) => this.inner.getRange(k, o, l);
  head = (k: string) => this.inner.head(k);
  list = (p: string): AsyncIterable<ObjectInfo> => (this.note('LIST', p), this.inner.list(p));
  delete = (k: string) => (this.note('DELETE', k), this.inner.delete(k));
}

describe('tenant locks on a directory store', () => {
  let dir: string;
  let store: DirectoryObjectStore;
  const mem = [{ start: BASE, data: randomBytes(32 * PS), zeroPages: 4 }];
  const locks = async () => {
    const out: string[] = [];
    for await (const o of store.list(keys.locks('acme'))) out.push(o.key.slice(keys.locks('acme').length));
    return out;
  };
  /** Sets a lock object's modification time (the age others judge it by) `ms` into the past. */
  const age = (key: string, ms: number) => utimes(join(dir, ...key.split('/')), new Date(Date.now() - ms), new Date(Date.now() - ms));
  const settled = (p: Promise<unknown>) => Promise.race([p.then(() => true, () => true), new Promise((r) => setTimeout(() => r(false), 300))]);

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-locks-'));
    store = new DirectoryObjectStore(dir);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('snapshots ingested together share one lock object, which the last one out deletes', async () => {
    const repo = new Repository(store, { locks: { host: 'compactor-7', pid: 4242 } });
    const t = await repo.tenant('acme');
    const one = await repo.lockShared(t);
    const two = await repo.lockShared(t);
    const held = await locks();
    expect(held).toEqual([expect.stringMatching(/^shared-[0-9a-z]+$/)]);
    expect(JSON.parse((await store.get(keys.lock('acme', held[0]!))).toString())).toMatchObject({ kind: 'shared', host: 'compactor-7', pid: 4242 });
    await one.release();
    await one.release(); // twice is once
    expect(await locks()).toEqual(held);
    await two.release();
    expect(await locks()).toEqual([]);
    const three = await repo.lockShared(t); // a new share after the last one out: a new object
    expect((await locks()).length).toBe(1);
    expect(await locks()).not.toEqual(held);
    await three.release();
  });

  it('prune refuses while a snapshot is being ingested, naming the holder, deletes nothing, and runs once it has committed', async () => {
    const repo = new Repository(store, { locks: { host: 'compactor-7', pid: 4242 } });
    const first = await ingest(repo, 1, mem, 1000);
    await forgetSnapshots(await repo.tenant('acme'), [first.snapshotId]);
    const data = randomBytes(8 * PS);
    const { id, frames } = snapshotFrames(2, [{ start: BASE, data }], 2000);
    const ing = new SnapshotIngest(repo, id);
    await ing.accept(frames[0]!); // begin: the shared lock is taken
    const before = await locks();
    const e = await prune(store, 'acme', { graceMs: 0 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PvError);
    expect(e).toMatchObject({ code: ErrorCodes.REPO_LOCKED, retriable: true, details: { tenant: 'acme', locks: [keys.lock('acme', before[0]!)] } });
    expect((e as Error).message).toMatch(/shared lock t\/acme\/locks\/shared-\w+ held by host compactor-7 pid 4242, taken \d+ s ago/);
    expect(await locks()).toEqual(before); // its own lock undone
    expect(await store.head(keys.manifest('acme', first.snapshotId))).toBeUndefined();
    expect((await prune(store, 'acme', { graceMs: 0, dryRun: true })).packs.deleted).toBe(1); // a dry run takes no lock

    let m: Manifest | undefined;
    for (const f of frames.slice(1)) m = (await ing.accept(f)) ?? m;
    expect(await locks()).toEqual([]);
    expect((await prune(store, 'acme', { graceMs: 0 })).packs.deleted).toBe(1);
    expect((await readBack(await new Repository(store).tenant('acme'), m!))[0]!.equals(data)).toBe(true);
  });

  it('a lock not rewritten for the staleness is ignored, and prune deletes it; a younger one is not', async () => {
    const repo = new Repository(store);
    const held = await repo.lockShared(await repo.tenant('acme'));
    const [name] = await locks();
    await age(keys.lock('acme', name!), 9 * MIN);
    await expect(prune(store, 'acme')).rejects.toMatchObject({ code: ErrorCodes.REPO_LOCKED });
    await age(keys.lock('acme', name!), 11 * MIN);
    const r = await prune(store, 'acme');
    expect(r.staleLocksDeleted).toBe(1);
    expect(await locks()).toEqual([]);
    await held.release();
  });

  it("the lock of a holder that died on this host is deleted at once, not waited for; another host's or a live one's is not", async () => {
    const me = ownIdentity()!;
    const dead = spawnSync('true').pid!; // exited: its pid is free (or, later, someone else's)
    const put = async (kind: 'shared' | 'exclusive', pid: number, holder: LockRecord['holder']) => {
      const id = newLockId();
      const r: LockRecord = { kind, id, host: 'h', pid, createdMs: Date.now(), refreshedMs: Date.now(), ...(holder ? { holder } : {}) };
      await store.put(keys.lock('acme', `${kind}-${id}`), Buffer.from(JSON.stringify(r)));
      return `${kind}-${id}`;
    };
    // A snapshot killed mid-ingest (SIGINT, SIGKILL): its shared lock no longer keeps prune out.
    await put('shared', dead, me);
    // Our own pid, but a later process's: the holder is gone too (pid reuse).
    await put('shared', process.pid, { ...me, startTicks: '1' });
    const r = await prune(store, 'acme');
    expect(r.staleLocksDeleted).toBe(2); // both deleted, and counted
    expect(await locks()).toEqual([]);
    // A holder on another boot (another host), or without an identity (an older version): judged by age only.
    const other = await put('shared', dead, { ...me, bootId: 'another-boot' });
    await expect(prune(store, 'acme')).rejects.toMatchObject({ code: ErrorCodes.REPO_LOCKED });
    await store.delete(keys.lock('acme', other));
    const old = await put('shared', dead, undefined);
    await expect(prune(store, 'acme')).rejects.toMatchObject({ code: ErrorCodes.REPO_LOCKED });
    await store.delete(keys.lock('acme', old));
    // A live holder (this process) keeps prune out, and a dead prune does not hold a snapshot back.
    const repo = new Repository(store);
    const held = await repo.lockShared(await repo.tenant('acme'));
    await expect(prune(store, 'acme')).rejects.toMatchObject({ code: ErrorCodes.REPO_LOCKED });
    await held.release();
    await put('exclusive', dead, me);
    const m = await ingest(repo, 1, mem, 1000);
    expect(m.counts.dataPages).toBe(32);
    expect(await locks()).toEqual([]);
  });

  it('a second prune is refused while one holds the tenant', async () => {
    const { lock } = await lockExclusive(store, 'acme', { host: 'cron-1', pid: 77 });
    await expect(prune(store, 'acme')).rejects.toMatchObject({ code: ErrorCodes.REPO_LOCKED, message: expect.stringMatching(/exclusive lock .* held by host cron-1 pid 77/) });
    await lock.release();
    await expect(prune(store, 'acme')).resolves.toMatchObject({ dryRun: false });
  });

  it('a snapshot waits while a prune holds the tenant, then commits and restores', async () => {
    const repo = new Repository(store);
    await repo.tenant('acme');
    const { lock } = await lockExclusive(store, 'acme');
    const { id, frames } = snapshotFrames(1, mem, 1000);
    let waits = 0;
    const ing = new SnapshotIngest(repo, id, { onLockWait: () => void waits++ });
    const begun = ing.accept(frames[0]!);
    expect(await settled(begun)).toBe(false);
    expect(waits).toBeGreaterThan(0);
    expect((await locks()).filter((n) => n.startsWith('shared-'))).toEqual([]); // it undid its PUT to wait
    await lock.release();
    await begun;
    let m: Manifest | undefined;
    for (const f of frames.slice(1)) m = (await ing.accept(f)) ?? m;
    expect((await readBack(await new Repository(store).tenant('acme'), m!))[0]!.equals(mem[0]!.data)).toBe(true);
  });

  it('a prune that waits holds new snapshots back until those being ingested have drained, then runs', async () => {
    const repo = new Repository(store);
    const busy = await repo.lockShared(await repo.tenant('acme'));
    const order: string[] = [];
    const pruned = prune(store, 'acme', { graceMs: 0, lock: { waitMs: 20_000 } }).then(() => order.push('pruned'));
    expect(await settled(pruned)).toBe(false);
    expect((await locks()).some((n) => n.startsWith('exclusive-'))).toBe(true); // held while it waits

    const other = new Repository(store); // another compactor: no share to join, so it waits
    const next = other.lockShared(await other.tenant('acme')).then((h) => (order.push('next'), h));
    expect(await settled(next)).toBe(false);
    order.push('drained');
    await busy.release();
    await (await next).release();
    await pruned;
    expect(order).toEqual(['drained', 'pruned', 'next']);
  });

  it('a prune that may wait gives up with PV_REPO_LOCKED once its time is out', async () => {
    const repo = new Repository(store);
    const busy = await repo.lockShared(await repo.tenant('acme'));
    const t0 = Date.now();
    await expect(prune(store, 'acme', { lock: { waitMs: 700, holdMs: 300 } })).rejects.toMatchObject({ code: ErrorCodes.REPO_LOCKED, message: expect.stringContaining('waited 1 s') });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(700);
    expect(await locks()).toHaveLength(1);
    await busy.release();
  });

  it('a compactor whose index was loaded before a prune stores the pruned pages again (and restores them)', async () => {
    const repo = new Repository(store); // one long-lived compactor
    const a = await ingest(repo, 1, mem, 1000);
    expect(a.counts.newPages).toBe(32);
    await forgetSnapshots(await repo.tenant('acme'), [a.snapshotId]);
    const r = await prune(store, 'acme', { graceMs: 0 });
    expect(r.packs.deleted).toBe(1);
    expect(r.mapNodes.deleted).toBeGreaterThan(0);
    const b = await ingest(repo, 1, mem, 2000); // the same memory: the same pages and the same page-map nodes
    expect(b.counts.newPages).toBe(32);
    expect(b.counts.mapNodesWritten).toBe(r.mapNodes.deleted);
    expect((await readBack(await new Repository(store).tenant('acme'), b))[0]!.equals(mem[0]!.data)).toBe(true);
  });

  it('a snapshot whose lock could not be rewritten for half the staleness is not committed, and its replay is', async () => {
    const watch = new LockWatch(store);
    const repo = new Repository(watch, { locks: { staleMs: 400 } });
    const { id, frames } = snapshotFrames(1, mem, 1000);
    const ing = new SnapshotIngest(repo, id);
    await ing.accept(frames[0]!);
    let unblock!: () => void;
    watch.blocked = new Promise((r) => (unblock = r));
    await new Promise((r) => setTimeout(r, 300));
    const e = await (async () => {
      for (const f of frames.slice(1)) await ing.accept(f);
    })().catch((x: unknown) => x);
    expect(e).toMatchObject({ code: ErrorCodes.LOCK_LOST, retriable: true });
    expect(await store.head(keys.manifest('acme', ing.id))).toBeUndefined();
    unblock();
    watch.blocked = undefined;
    await ing.release();
    const again = new SnapshotIngest(repo, id);
    let m: Manifest | undefined;
    for (const f of frames) m = (await again.accept(f)) ?? m;
    expect(m!.snapshotId).toBe(ing.id);
    expect(await locks()).toEqual([]);
  });

  it('costs a snapshot one PUT, one LIST and one DELETE in the lock folder; one ingested alongside costs nothing', async () => {
    const watch = new LockWatch(store);
    const repo = new Repository(watch);
    await repo.tenant('acme');
    watch.ops.length = 0;
    await ingest(repo, 1, mem, 1000);
    expect(watch.ops).toEqual(['PUT', 'LIST', 'DELETE']);
    watch.ops.length = 0;
    const { id, frames } = snapshotFrames(2, mem, 2000);
    const long = new SnapshotIngest(repo, id);
    await long.accept(frames[0]!);
    await ingest(repo, 3, mem, 3000);
    for (const f of frames.slice(1)) await long.accept(f);
    expect(watch.ops).toEqual(['PUT', 'LIST', 'DELETE']);
  });
});
