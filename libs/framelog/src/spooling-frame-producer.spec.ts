import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { FramePool } from '@pagevault/format';
import { Collector, frameIndex, testFrame, testFrames, waitUntil } from './conformance-support';
import { InProcessFrameLog } from './in-process/in-process-frame-log';
import type { LogEntry } from './log-sink';
import { SpoolingFrameProducer, layoutEntry, withSpool } from './spooling-frame-producer';

/** A pid no process has now (the highest pid max allows, unless taken). */
function deadPid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let pid = max - 1; pid > 1; pid--) if (!existsSync(`/proc/${pid}`)) return pid;
  throw new Error('no free pid');
}

describe.each([true, false])('SpoolingFrameProducer (direct I/O: %s)', (direct) => {
  let dir: string;
  let inner: InProcessFrameLog;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pv-spool-'));
    inner = new InProcessFrameLog({ partitions: 2, maxFrameBytes: 64 * 1024, log: () => undefined });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const pending = async (p: Promise<unknown>) => (await Promise.race([p.then(() => 'settled'), new Promise((r) => setTimeout(() => r('pending'), 100))])) === 'pending';

  /** Flushes p, then the log holds exactly `copies`, each intact, in order (frame i is copies[i]). */
  const expectDelivered = async (p: SpoolingFrameProducer, copies: Buffer[]) => {
    await p.flush();
    const c = await new Collector(inner.consumer('g')).start();
    await waitUntil(() => c.records.length === copies.length, `${copies.length} records`, 5_000);
    expect(c.records.map((r) => r.value.equals(copies[frameIndex(r)]!))).toEqual(copies.map(() => true));
    expect(c.records.map(frameIndex)).toEqual(copies.map((_, i) => i));
    await c.stop();
  };

  it('accepts frames while the log withholds acks, keeps 16 KiB in memory, forwards all in order once it answers', async () => {
    const log = withSpool(inner, { dir, direct, memoryBytes: 16 * 1024 });
    const release = inner.holdAcks();
    const p = log.producer({ maxInFlightBytes: 8 * 1024 }) as SpoolingFrameProducer;
    // 2 × 40 frames of 1 KiB = 80 KiB through an 8 KiB window that is not moving: all accepted anyway.
    for (let i = 0; i < 40; i += 4) {
      await p.send('a', testFrames('a', i, 4, 1024));
      await p.send('b', testFrames('b', i, 4, 1024));
    }
    expect(p.spooledBytes).toBeGreaterThan(60 * 1024);
    expect(readdirSync(dir)).toEqual([]); // the spool file was unlinked when created
    const flushed = p.flush();
    expect(await pending(flushed)).toBe(true);
    release();
    await flushed;
    expect(p.spooledBytes).toBe(0);
    expect(p.spoolIo).toBe(direct ? 'direct' : 'buffered'); // the test directory's file system has O_DIRECT
    const c = await new Collector(inner.consumer('g')).start();
    await waitUntil(() => c.records.length === 80, '80 records', 5_000);
    for (const key of ['a', 'b']) {
      expect(c.records.filter((r) => r.key === key).map(frameIndex)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    }
    await c.stop();
    await p.close();
  });

  it('forwards nothing while held, refuses flush() then, and ships everything once released', async () => {
    const p = new SpoolingFrameProducer(inner.producer(), inner.maxFrameBytes, { dir, direct, memoryBytes: 8 * 1024 });
    const release = p.hold();
    await p.send('k', testFrames('k', 0, 20, 1024));
    const c = await new Collector(inner.consumer('g')).start();
    await new Promise((r) => setTimeout(r, 100));
    expect(c.records).toEqual([]);
    expect(p.spooledBytes).toBe(20 * 1024);
    await expect(p.flush()).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    release();
    release(); // twice is harmless
    await p.flush();
    await waitUntil(() => c.records.length === 20, '20 records', 5_000);
    expect(c.records.map(frameIndex)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await c.stop();
    await p.close();
  });

  it('gives spilled frames back once written, never those kept in memory; reusing them changes nothing shipped', async () => {
    const p = new SpoolingFrameProducer(inner.producer(), inner.maxFrameBytes, { dir, direct, memoryBytes: 8 * 1024 });
    const release = p.hold();
    const given: Buffer[][] = [];
    const done = (fs: Buffer[]) => given.push(fs);
    const sent = [testFrames('k', 0, 8, 1024), testFrames('k', 8, 8, 1024), testFrames('k', 16, 8, 1024)];
    const copies = sent.flat().map((f) => Buffer.from(f));
    for (const fs of sent) await p.send('k', fs, done);
    await waitUntil(() => given.length === 2, 'two spilled batches given back', 5_000);
    // The first batch stayed in memory: not given back. The other two, in whichever order their writes land.
    expect(new Set(given)).toEqual(new Set([sent[1], sent[2]]));
    for (const fs of given) for (const f of fs) f.fill(0xee); // the sender refills them at once
    release();
    await p.flush();
    const c = await new Collector(inner.consumer('g')).start();
    await waitUntil(() => c.records.length === 24, '24 records', 5_000);
    expect(c.records.map((r) => r.value)).toEqual(copies);
    await c.stop();
    await p.close();
  });

  it('spools entries of many small frames around pool frames (packed runs when direct), intact and in order', async () => {
    const p = new SpoolingFrameProducer(inner.producer(), inner.maxFrameBytes, { dir, direct, memoryBytes: 4096 });
    const release = p.hold();
    const pool = new FramePool();
    const copies: Buffer[] = [];
    let seq = 0;
    for (let e = 0; e < 6; e++) {
      // A heap's batch: small header and run frames, a pool chunk in the middle, odd sizes.
      const frames: Buffer[] = [];
      for (let k = 0; k < 7; k++) {
        if (k === 3) {
          const src = testFrame('k', seq++, 20_000);
          const pooled = pool.take(src.length);
          src.copy(pooled);
          frames.push(pooled);
        } else frames.push(testFrame('k', seq++, 100 + 37 * k + e));
      }
      copies.push(...frames.map((f) => Buffer.from(f)));
      await p.send('k', frames, (fs) => pool.giveAll(fs));
    }
    release();
    await expectDelivered(p, copies);
    expect(p.spoolIo).toBe(direct ? 'direct' : 'buffered');
    await p.close();
  });

  it('spools the frames of a FramePool (written as they are when direct) beside other frames, intact and in order', async () => {
    const p = new SpoolingFrameProducer(inner.producer(), inner.maxFrameBytes, { dir, direct, memoryBytes: 4096 });
    const release = p.hold();
    const pool = new FramePool();
    const copies: Buffer[] = [];
    const given: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const src = testFrame('k', 2 * i, 5000);
      const pooled = pool.take(src.length);
      src.copy(pooled);
      const other = testFrame('k', 2 * i + 1, 3000);
      copies.push(Buffer.from(pooled), Buffer.from(other));
      await p.send('k', [pooled, other], (fs) => void given.push(...fs));
    }
    await waitUntil(() => given.length >= 18, 'spilled frames given back', 5_000); // the first entry stays in memory
    for (const f of given) f.fill(0xee); // the sender refills them at once
    release();
    await expectDelivered(p, copies);
    await p.close();
  });

  it('removes the spool files of dead processes (killed between creating and unlinking one), and no one else\'s', async () => {
    const dead = `pagevault-spool-${deadPid()}-x-1`;
    const living = `pagevault-spool-${process.ppid}-x-2`;
    for (const n of [dead, living, 'something-else']) writeFileSync(join(dir, n), '');
    const p = new SpoolingFrameProducer(inner.producer(), inner.maxFrameBytes, { dir, direct, memoryBytes: 4096 });
    const release = p.hold();
    for (let i = 0; i < 40; i += 4) await p.send('k', testFrames('k', i, 4, 3000)); // held, past memory: a spool file opens
    release();
    await p.flush();
    expect(p.spoolIo).toBe(direct ? 'direct' : 'buffered');
    expect(readdirSync(dir).sort()).toEqual([living, 'something-else'].sort());
    await p.close();
  });

  it('reuses its file after it empties: frames stay intact over several fill-and-drain rounds', async () => {
    const p = new SpoolingFrameProducer(inner.producer(), inner.maxFrameBytes, { dir, direct, memoryBytes: 4096 });
    const sent: Buffer[] = [];
    for (let round = 0; round < 3; round++) {
      const release = inner.holdAcks();
      for (let i = 0; i < 10; i++) {
        const f = testFrames('k', round * 10 + i, 1, 3000);
        sent.push(...f);
        await p.send('k', f);
      }
      release();
      await p.flush();
    }
    const c = await new Collector(inner.consumer('g')).start();
    await waitUntil(() => c.records.length === 30, '30 records', 5_000);
    expect(c.records.map((r) => r.value.equals(sent[frameIndex(r)]!))).toEqual(sent.map(() => true));
    await c.stop();
    await p.close();
  });

  it('keeps what it cannot spool in memory: frames go at the log\'s pace even while held, memory stays bounded, one warning', async () => {
    const notADir = join(dir, 'file');
    writeFileSync(notADir, '');
    const warnings: LogEntry[] = [];
    const spoolDir = join(notADir, 'spool'); // cannot be created: every spill fails
    const p = new SpoolingFrameProducer(inner.producer({ maxInFlightBytes: 4096 }), inner.maxFrameBytes, { dir: spoolDir, direct, memoryBytes: 4096, log: (e) => warnings.push(e) });
    const release = p.hold(); // as a frozen capture does: without a spool, holding would only grow memory
    const frames = testFrames('k', 0, 80, 1000);
    const copies = frames.map((f) => Buffer.from(f));
    // Two rounds: each spill fails (the second after the spool emptied and was tried again), its frames
    // stay queued, and the log takes them all although the producer is held.
    for (const round of [0, 40]) {
      for (let i = round; i < round + 40; i += 2) await p.send('k', frames.slice(i, i + 2));
      await waitUntil(() => p.spooledBytes === 0, 'the log taking every frame while held', 5_000);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ level: 'warn', namespace: 'framelog.spool', extra: { dir: spoolDir } });
    expect(warnings[0]!.message).toContain(spoolDir);
    release();
    await expectDelivered(p, copies);
    await p.close();
  });

  it('passes the log failure on: flush and later sends reject with it', async () => {
    // A real log that fails its writes: an in-process log that must spill into a path under a file.
    const notADir = join(dir, 'file');
    writeFileSync(notADir, '');
    const broken = new InProcessFrameLog({ partitions: 1, maxFrameBytes: 64 * 1024, memoryBytes: 1, spillDir: join(notADir, 'x'), log: () => undefined });
    const p = new SpoolingFrameProducer(broken.producer(), broken.maxFrameBytes, { dir });
    await p.send('k', testFrames('k', 0, 1));
    await expect(p.flush()).rejects.toMatchObject({ code: ErrorCodes.LOG_UNAVAILABLE });
    await expect(p.send('k', testFrames('k', 1, 1))).rejects.toMatchObject({ code: ErrorCodes.LOG_UNAVAILABLE });
  });
});

describe('layoutEntry', () => {
  it('starts pool frames block-aligned and packs runs of other frames, each run from an aligned start', () => {
    const pool = new FramePool();
    const pooled = pool.take(9000);
    const small = (n: number) => Buffer.alloc(n);
    const l = layoutEntry([small(100), small(200), pooled, small(300), small(5000), small(10)]);
    expect(l.offsets).toEqual([0, 100, 4096, 4096 + 12288, 4096 + 12288 + 300, 4096 + 12288 + 5300]);
    expect(l.runs).toEqual([
      { from: 0, to: 2, at: 0, bytes: 300 },
      { from: 3, to: 6, at: 16384, bytes: 5310 },
    ]);
    expect(l.span).toBe(16384 + 8192);
    expect(l.own.map((o) => [o.i, o.view.length])).toEqual([[2, 12288]]);
  });

  it('splits a run past 4 MiB', () => {
    const l = layoutEntry([Buffer.alloc(3 << 20), Buffer.alloc(3 << 20), Buffer.alloc(10)]);
    expect(l.runs.map((r) => [r.from, r.to, r.at])).toEqual([[0, 1, 0], [1, 3, 3 << 20]]);
    expect(l.offsets).toEqual([0, 3 << 20, 6 << 20]);
  });
});
