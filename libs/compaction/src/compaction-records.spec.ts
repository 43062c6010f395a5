import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Consistency, SnapshotMode, SnapshotWriter, VmaKind, idToHex, newSnapshotId } from '@pagevault/format';
import { InProcessFrameLog, partitionForKey, type FrameRecord } from '@pagevault/framelog';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { Repository } from '@pagevault/repo';
import { CompactionService } from './compaction-service';

// Records an agent never writes, on the in-process log (two partitions): a snapshot whose frames go under
// two keys on two partitions, and bad records under keys that are not snapshot ids.

const PS = 4096;

function snapshot(pages: number): { id: string; frames: Buffer[] } {
  const id = newSnapshotId();
  const frames: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: id, emit: (f) => frames.push(f) });
  const start = 0x5500_0000_0000;
  w.begin({ pageSize: PS, pid: 7, startTimeMs: Date.now(), mode: SnapshotMode.Full, consistency: Consistency.Frozen, tenant: 't', host: 'h', cmdline: 'x' });
  w.beginVma({ start, end: start + pages * PS, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '00:00', inode: 0, path: '', vmFlags: 'rd wr', reason: '', sharedKey: '' });
  w.addPages(Float64Array.from({ length: pages }, (_, i) => start + i * PS), randomBytes(pages * PS));
  w.endVma();
  w.end();
  return { id: idToHex(id), frames };
}

/** A key that lands on `partition` of 2. */
function keyOn(partition: number): string {
  for (let i = 0; ; i++) if (partitionForKey(`k${i}`, 2) === partition) return `k${i}`;
}

describe('records no agent writes', () => {
  let dir: string;
  let log: InProcessFrameLog;
  let svc: CompactionService;
  const committed: string[] = [];
  const failed: string[] = [];
  const dead: { key: string; snapshot: string; code: string }[] = [];
  let handled = 0;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-compaction-records-'));
    log = new InProcessFrameLog({ partitions: 2, retryBackoffMs: 20, log: () => undefined });
    committed.length = failed.length = dead.length = handled = 0;
    svc = new CompactionService(log, new Repository(new DirectoryObjectStore(dir)), {
      groupId: 'g',
      deadLetter: async (rec: FrameRecord, snapshot, code) => void dead.push({ key: rec.key, snapshot, code }),
      events: { committed: (m) => committed.push(m.snapshotId), failed: (id, code) => failed.push(`${id} ${code}`), frames: (n) => (handled += n) },
    });
    await svc.start();
  });
  afterEach(async () => {
    await svc.stop();
    log.close();
    await rm(dir, { recursive: true, force: true });
  });

  const waitHandled = async (n: number) => {
    for (let i = 0; i < 200 && handled < n; i++) await sleep(20);
    expect(handled).toBe(n);
  };

  it("fails a snapshot whose frames come on two partitions, instead of committing one partition's offset past it", async () => {
    const a = snapshot(8);
    const p = log.producer();
    await p.send(keyOn(0), a.frames.slice(0, 2));
    await p.flush();
    await waitHandled(2);
    await p.send(keyOn(1), a.frames.slice(2));
    await p.flush();
    await waitHandled(a.frames.length);
    await p.close();
    expect(committed).toEqual([]);
    expect(failed).toEqual([`${a.id} PV_STREAM_ORDER`]);
    expect(dead.map((d) => d.snapshot)).toEqual([a.id]);
    expect(svc.openSnapshots).toBe(0);
  });

  it('dead-letters garbage under a key that is not a snapshot id as unidentified, failing no snapshot', async () => {
    const b = snapshot(4);
    const p = log.producer();
    await p.send('hello', [Buffer.from('not a frame')]);
    await p.send(b.id, b.frames);
    await p.send(b.id, [Buffer.from('garbage under the key of a snapshot that committed')]);
    await p.flush();
    await waitHandled(2 + b.frames.length);
    await p.close();
    expect(committed).toEqual([b.id]);
    expect(failed).toEqual([]);
    expect(dead).toEqual([
      { key: 'hello', snapshot: '', code: 'PV_FRAME_TRUNCATED' },
      { key: b.id, snapshot: b.id, code: 'PV_FRAME_BAD_MAGIC' }, // longer than a header: read as one
    ]);
  });

  it('fails a snapshot begun while maxOpenSnapshots are open, and takes new ones once some end', async () => {
    await svc.stop();
    svc = new CompactionService(log, new Repository(new DirectoryObjectStore(dir)), {
      groupId: 'g2',
      maxOpenSnapshots: 2,
      deadLetter: async (rec: FrameRecord, snapshot, code) => void dead.push({ key: rec.key, snapshot, code }),
      events: { committed: (m) => committed.push(m.snapshotId), failed: (id, code) => failed.push(`${id} ${code}`), frames: (n) => (handled += n) },
    });
    await svc.start();
    const [a, b, c, d] = [snapshot(2), snapshot(2), snapshot(2), snapshot(2)];
    const p = log.producer();
    for (const s of [a, b, c]) await p.send(keyOn(0), s.frames.slice(0, 1));
    await p.flush();
    await waitHandled(3);
    expect(failed).toEqual([`${c.id} PV_SNAPSHOT_FAILED`]);
    expect(svc.openSnapshots).toBe(2);
    for (const s of [a, b]) await p.send(keyOn(0), s.frames.slice(1));
    await p.send(keyOn(0), d.frames);
    await p.flush();
    await waitHandled(3 + a.frames.length - 1 + b.frames.length - 1 + d.frames.length);
    await p.close();
    expect(committed).toEqual([a.id, b.id, d.id]);
    expect(svc.openSnapshots).toBe(0);
  });
});

describe('a snapshot replayed after its batch failed', () => {
  it('reports its commit latency from its first frame, not from the replay that committed it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pv-compaction-latency-'));
    const inner = new DirectoryObjectStore(dir);
    let refusing = true;
    // A store that refuses every put until told: the batch fails, the partition is delivered again.
    const store = new Proxy(inner, {
      get(target, prop, receiver) {
        if (prop === 'put') {
          return (key: string, body: Uint8Array, sha?: string) =>
            refusing ? Promise.reject(Object.assign(new Error(`test: put ${key} refused`), { code: 'ECONNREFUSED' })) : target.put(key, body, sha);
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
    const log = new InProcessFrameLog({ partitions: 1, retryBackoffMs: 20, log: () => undefined });
    const latencies: number[] = [];
    const svc = new CompactionService(log, new Repository(store), { groupId: 'g', events: { committed: (_m, ms) => latencies.push(ms) } });
    try {
      await svc.start();
      const s = snapshot(8);
      const p = log.producer();
      await p.send(s.id, s.frames);
      await p.flush();
      await sleep(600);
      refusing = false;
      for (let i = 0; i < 300 && latencies.length === 0; i++) await sleep(20);
      expect(latencies.length).toBe(1);
      expect(latencies[0]).toBeGreaterThanOrEqual(550);
    } finally {
      await svc.stop();
      log.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
