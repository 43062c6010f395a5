import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { Consistency, SnapshotMode, SnapshotWriter, VmaKind, idToHex, newSnapshotId } from '@pagevault/format';
import { InProcessFrameLog } from '@pagevault/framelog';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { Repository, keys, lockExclusive } from '@pagevault/repo';
import { CompactionService } from './compaction-service';

const PS = 4096;

/** The encoded frames of a one-VMA snapshot of `pages` random pages for `tenant`. */
function snapshot(tenant: string, pages: number): { id: string; frames: Buffer[] } {
  const id = newSnapshotId();
  const frames: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: id, emit: (f) => frames.push(f) });
  const start = 0x5500_0000_0000;
  w.begin({ pageSize: PS, pid: 7, startTimeMs: Date.now(), mode: SnapshotMode.Full, consistency: Consistency.Frozen, tenant, host: 'h', cmdline: 'lock-test' });
  w.beginVma({ start, end: start + pages * PS, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '00:00', inode: 0, path: '', vmFlags: 'rd wr', reason: '', sharedKey: '' });
  w.addPages(Float64Array.from({ length: pages }, (_, i) => start + i * PS), randomBytes(pages * PS));
  w.endVma();
  w.end();
  return { id: idToHex(id), frames };
}

describe('the consumer loop and tenant locks', () => {
  let dir: string;
  let store: DirectoryObjectStore;
  let log: InProcessFrameLog;
  let svc: CompactionService;
  const committed: string[] = [];
  const failed: string[] = [];
  const locks = async (tenant: string) => {
    const out: string[] = [];
    for await (const o of store.list(keys.locks(tenant))) out.push(o.key);
    return out;
  };

  /** The store fails the next node-pack upload once (retriable, as an S3 outage past its retries). */
  let failNextNode = false;
  /**
   * While set, listings of this tenant's locks made once its shared lock object is written (the taker's
   * look for prunes) wait for `opened`.
   */
  let holdLockListsOf: { tenant: string; opened: Promise<void>; written?: boolean } | undefined;
  /** While set, every pack put of this tenant takes `ms` (a store that retries through an outage). */
  let slowPacksOf: { tenant: string; ms: number } | undefined;
  /** While set, puts of failed records wait for `released` (`started` counts them). */
  let holdFailedPuts: { released: Promise<void>; started: number } | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-compaction-locks-'));
    store = new DirectoryObjectStore(dir);
    const put = store.put.bind(store);
    store.put = async (key, body) => {
      if (failNextNode && key.includes('/maps/')) {
        failNextNode = false;
        throw new PvError(ErrorCodes.STORE_UNAVAILABLE, `put ${key}: injected outage`, { retriable: true });
      }
      if (holdLockListsOf && key.startsWith(keys.lock(holdLockListsOf.tenant, 'shared-'))) holdLockListsOf.written = true;
      if (slowPacksOf && key.startsWith(keys.packs(slowPacksOf.tenant))) await sleep(slowPacksOf.ms);
      if (holdFailedPuts && key.includes('/failed/')) {
        holdFailedPuts.started++;
        await holdFailedPuts.released;
      }
      return put(key, body);
    };
    const list = store.list.bind(store);
    store.list = (prefix) => {
      const held = holdLockListsOf;
      if (!held?.written || !prefix.startsWith(keys.locks(held.tenant))) return list(prefix);
      return (async function* () {
        await held.opened;
        yield* list(prefix);
      })();
    };
    log = new InProcessFrameLog({ partitions: 1, retryBackoffMs: 20, log: () => undefined });
    committed.length = 0;
    failed.length = 0;
    svc = new CompactionService(log, new Repository(store), {
      groupId: 'g',
      snapshotTimeoutMs: 300,
      events: { committed: (m) => committed.push(m.snapshotId), failed: (id, code) => failed.push(`${id} ${code}`) },
    });
    await svc.start();
  });
  afterEach(async () => {
    holdLockListsOf = undefined;
    holdFailedPuts = undefined;
    slowPacksOf = undefined;
    await svc.stop();
    log.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Snapshot b's begin, then all of a (tenant a), then the rest of b, on the one partition. */
  const bBehindA = async () => {
    const b = snapshot('b', 8);
    const a = snapshot('a', 8);
    const p = log.producer();
    await p.send('k', b.frames.slice(0, 1));
    await p.send('k', a.frames);
    await p.send('k', b.frames.slice(1));
    await p.flush();
    return { a, b, p };
  };

  it('a snapshot waiting for a prune does not get the snapshots stuck behind it failed as never-ended', async () => {
    const { lock } = await lockExclusive(store, 'a'); // a prune holds tenant a
    // One partition: b's frames after its begin wait behind a's begin, which waits for the prune.
    const { a, b, p } = await bBehindA();
    await sleep(1200); // four snapshot timeouts
    expect(failed).toEqual([]);
    expect(committed).toEqual([]);
    await lock.release();
    for (let i = 0; i < 100 && committed.length < 2; i++) await sleep(50);
    expect(failed).toEqual([]);
    expect(committed.sort()).toEqual([a.id, b.id].sort());
    expect([...(await locks('a')), ...(await locks('b'))]).toEqual([]);
    await p.close();
  });

  it('a store call that takes many timeouts does not get the snapshots whose frames wait behind it failed', async () => {
    slowPacksOf = { tenant: 'a', ms: 1500 }; // five snapshot timeouts a pack
    // One partition: b's frames after its begin wait behind a's, whose pack upload is slow.
    const { a, b, p } = await bBehindA();
    for (let i = 0; i < 200 && committed.length < 2; i++) await sleep(25);
    expect(failed).toEqual([]);
    expect(committed).toEqual([a.id, b.id]);
    // A snapshot whose frames stop while the consumer is free still expires.
    const x = snapshot('x', 8);
    await p.send('k', x.frames.slice(0, 2));
    await p.flush();
    for (let i = 0; i < 100 && failed.length === 0; i++) await sleep(20);
    expect(failed).toEqual([`${x.id} ${ErrorCodes.TIMEOUT}`]);
    await p.close();
  });

  it('a stream whose frames stopped still expires while its partition is replayed again and again (a store outage, rebalances)', async () => {
    const x = snapshot('x', 8);
    const p = log.producer();
    await p.send('k', x.frames.slice(0, 2)); // its agent died: no more frames
    await p.flush();
    // Every 100 ms another snapshot's node upload fails once: the partition is dropped and delivered again
    // from its committed offset (before x's begin), x's frames among it.
    const churn: string[] = [];
    for (let i = 0; i < 8 && failed.length === 0; i++) {
      const y = snapshot('y', 4);
      failNextNode = true;
      await p.send('k', y.frames);
      await p.flush();
      churn.push(y.id);
      await sleep(100);
    }
    // Frames delivered again are not news of the stream: x expired during the churn, not after it.
    expect(failed).toEqual([`${x.id} ${ErrorCodes.TIMEOUT}`]);
    for (let i = 0; i < 100 && committed.length < churn.length; i++) await sleep(20);
    expect(committed.sort()).toEqual(churn.sort());
    await p.close();
  });

  it('a snapshot timed out by the timer while a batch arrives is failed once', async () => {
    const x = snapshot('x', 8);
    const y = snapshot('y', 8);
    let release!: () => void;
    holdFailedPuts = { released: new Promise<void>((r) => (release = r)), started: 0 };
    const p = log.producer();
    await p.send('k', x.frames.slice(0, 2)); // no end: the timer fails x after 300 ms
    await p.flush();
    for (let i = 0; i < 100 && holdFailedPuts.started === 0; i++) await sleep(20);
    expect(holdFailedPuts.started).toBe(1); // x's failed record is being written
    await p.send('k', y.frames); // a batch, whose end expires the partition's snapshots again
    await p.flush();
    for (let i = 0; i < 100 && committed.length === 0; i++) await sleep(20);
    expect(committed).toEqual([y.id]);
    release();
    await sleep(400);
    expect(failed).toEqual([`${x.id} ${ErrorCodes.TIMEOUT}`]);
    expect(await readdir(join(dir, 't', 'x', 'failed'))).toEqual([`${x.id}.json`]);
    await p.close();
  });

  it('stopping gives back the locks of snapshots left unfinished', async () => {
    const b = snapshot('b', 8);
    const p = log.producer();
    await p.send('k', b.frames.slice(0, 2));
    await p.flush();
    for (let i = 0; i < 100 && (await locks('b')).length === 0; i++) await sleep(20);
    expect(await locks('b')).toHaveLength(1);
    await svc.stop();
    expect(await locks('b')).toEqual([]);
    expect(failed).toEqual([]);
    await p.close();
  });

  it('stopping while a snapshot is taking its lock gives the lock back once taken', async () => {
    let open!: () => void;
    holdLockListsOf = { tenant: 'c', opened: new Promise<void>((r) => (open = r)) };
    const c = snapshot('c', 8);
    const p = log.producer();
    await p.send('k', c.frames.slice(0, 2));
    await p.flush();
    try {
      // The lock object is written; the look for prunes that follows it is held.
      for (let i = 0; i < 100 && !holdLockListsOf.written; i++) await sleep(20);
      expect(holdLockListsOf.written).toBe(true);
      expect(await readdir(join(dir, 't', 'c', 'locks'))).toHaveLength(1);
      const stopped = svc.stop();
      await sleep(50);
      open();
      await stopped;
    } finally {
      open();
    }
    holdLockListsOf = undefined;
    expect(await locks('c')).toEqual([]);
    expect(failed).toEqual([]);
    await p.close();
  });

  it('stopping does not wait for the prune a snapshot is waiting for', async () => {
    const { lock } = await lockExclusive(store, 'a');
    const a = snapshot('a', 8);
    const p = log.producer();
    await p.send('k', a.frames);
    await p.flush();
    await sleep(300);
    const t0 = Date.now();
    await svc.stop();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(committed).toEqual([]);
    expect(failed).toEqual([]);
    expect(await locks('a')).toEqual([lock.key]);
    await lock.release();
    await p.close();
  });

  it('after a retriable store error the open snapshots start again from their begin and commit, their locks given back meanwhile', async () => {
    const a = snapshot('a', 8);
    const b = snapshot('b', 8);
    const p = log.producer();
    failNextNode = true; // a's node pack, at its end: b is open too
    await p.send('k', [...a.frames.slice(0, 2), ...b.frames.slice(0, 2), ...a.frames.slice(2), ...b.frames.slice(2)]);
    await p.flush();
    for (let i = 0; i < 100 && committed.length < 2; i++) await sleep(50);
    expect(failed).toEqual([]);
    expect(committed.sort()).toEqual([a.id, b.id].sort());
    expect(failNextNode).toBe(false);
    expect([...(await locks('a')), ...(await locks('b'))]).toEqual([]);
    await p.close();
  });
});
