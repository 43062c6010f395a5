import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { describeFrameLogConformance } from '../conformance';
import {
  Collector,
  frameIndex,
  freshKey,
  keysOnPartition,
  testFrame,
  testFrames,
  waitUntil,
} from '../conformance-support';
import type { BatchControl } from '../frame-log';
import { partitionForKey } from '../partition-for-key';
import { InProcessFrameLog } from './in-process-frame-log';

describeFrameLogConformance(
  'in-process',
  async () => {
    const log = new InProcessFrameLog({ partitions: 4, maxFrameBytes: 64 * 1024 });
    return { log, partitions: 4, holdAcks: () => log.holdAcks(), close: async () => undefined };
  },
  { waitMs: 5_000, quietMs: 100 },
);

describeFrameLogConformance(
  'in-process, spilling past a 16 KiB memory budget',
  async () => {
    const log = new InProcessFrameLog({ partitions: 4, maxFrameBytes: 64 * 1024, memoryBytes: 16 * 1024 });
    return { log, partitions: 4, holdAcks: () => log.holdAcks(), close: async () => log.close() };
  },
  { waitMs: 5_000, quietMs: 100 },
);

describe('InProcessFrameLog spill file', () => {
  it('holds at most its memory budget, delivers spilled frames intact, and gives the space back on commit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pv-spill-'));
    const l = new InProcessFrameLog({ partitions: 1, maxFrameBytes: 64 * 1024, memoryBytes: 100_000, spillDir: dir, log: () => undefined });
    try {
      const p = l.producer();
      const frames = Array.from({ length: 40 }, (_, i) => Buffer.alloc(10_000, i + 1));
      await p.send('k', frames);
      await p.flush();
      expect(l.retainedBytes()).toBe(400_000);
      expect(l.memoryRetainedBytes()).toBeLessThanOrEqual(100_000);
      expect(readdirSync(dir)).toEqual([]); // unlinked at creation: nothing left behind, whatever happens
      const got: Buffer[] = [];
      let last: { ctl: BatchControl; next: string } | undefined;
      const c = l.consumer('g');
      await c.start({
        onBatch: async (b, ctl) => {
          for (const r of b.records) got.push(r.value);
          last = { ctl, next: String(Number(b.records.at(-1)!.offset) + 1) };
        },
      });
      await waitUntil(() => got.length === 40, '40 frames', 5_000);
      expect(got.map((b, i) => b.equals(frames[i]!))).toEqual(frames.map(() => true));
      await last!.ctl.commit(0, last!.next);
      expect(l.retainedBytes()).toBe(0);
      expect(l.memoryRetainedBytes()).toBe(0);
      await c.stop();
    } finally {
      l.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails a send with a typed error when the spill directory cannot be written', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pv-spill-'));
    const notADir = join(dir, 'file');
    writeFileSync(notADir, '');
    try {
      const l = new InProcessFrameLog({ partitions: 1, maxFrameBytes: 64 * 1024, memoryBytes: 1, spillDir: join(notADir, 'spill'), log: () => undefined });
      const p = l.producer();
      const err = await p.send('k', [Buffer.alloc(100)]).then(() => p.flush()).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: ErrorCodes.LOG_UNAVAILABLE });
      expect(String((err as Error).message)).toContain(join(notADir, 'spill'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('InProcessFrameLog beyond the port contract', () => {
  const log = () =>
    new InProcessFrameLog({ partitions: 4, maxFrameBytes: 4096, retryBackoffMs: 10, log: () => undefined });
  const until = (cond: () => boolean) => waitUntil(cond, 'the condition', 5_000);

  it('splits the partitions between the members of a group, and hands them all to the survivor when one stops', async () => {
    const l = log();
    const keys = [0, 1, 2, 3].flatMap((p) => keysOnPartition(p, 4, 1));
    const p = l.producer();
    for (const k of keys) await p.send(k, testFrames(k, 0, 2));
    const a = await new Collector(l.consumer('g')).start();
    const b = await new Collector(l.consumer('g')).start();
    await until(() => b.assignments.length > 0 && a.assignments.length > 1);
    expect([...(a.assignments.at(-1) ?? []), ...(b.assignments.at(-1) ?? [])].sort()).toEqual([0, 1, 2, 3]);
    await until(() => new Set([...a.records, ...b.records].map((r) => r.key)).size === 4);
    await b.stop();
    const before = a.records.length;
    await until(() => a.assignments.at(-1)?.length === 4 && a.records.length - before >= 8);
    expect(a.violations).toEqual([]);
    await a.stop();
  });

  it('keeps a record only until every group has committed past it; a group created later starts at the oldest record kept', async () => {
    const l = log();
    const key = freshKey();
    const p = l.producer();
    await p.send(key, testFrames(key, 0, 4, 1000));
    expect(l.retainedBytes()).toBe(4000);
    const groupA = l.consumer('a');
    const groupB = l.consumer('b'); // both groups exist before either commits
    const a = await new Collector(groupA, () => true).start();
    const b = await new Collector(groupB, (r) => frameIndex(r) < 2).start();
    await until(() => a.records.length === 4 && b.records.length === 4);
    expect(l.retainedBytes()).toBe(2000);
    await Promise.all([a.stop(), b.stop()]);
    const late = await new Collector(l.consumer('late')).start();
    await until(() => late.records.length === 2);
    expect(late.records.map(frameIndex)).toEqual([2, 3]);
    await late.stop();
  });

  it('delivers a batch again from the committed offset when its handler throws', async () => {
    const l = log();
    const key = freshKey();
    await l.producer().send(key, testFrames(key, 0, 3));
    const seen: number[][] = [];
    const c = l.consumer('g');
    await c.start({
      onBatch: async (batch) => {
        seen.push(batch.records.map(frameIndex));
        if (seen.length === 1) throw new Error('downstream store unavailable');
      },
    });
    await until(() => seen.length === 2);
    expect(seen).toEqual([
      [0, 1, 2],
      [0, 1, 2],
    ]);
    await c.stop();
  });

  it('refuses, as retriable, a commit for a batch delivered before the group rebalanced', async () => {
    const l = log();
    const key = freshKey();
    await l.producer().send(key, [testFrame(key, 0)]);
    let ctl: BatchControl | undefined;
    const a = l.consumer('g');
    await a.start({ onBatch: async (_b, c) => void (ctl = c) });
    await until(() => ctl !== undefined);
    const b = l.consumer('g');
    await b.start({ onBatch: async () => undefined });
    if (!ctl) throw new Error('no batch delivered');
    expect(ctl.isStale()).toBe(true);
    await expect(ctl.commit(partitionForKey(key, 4), '1')).rejects.toMatchObject({
      code: ErrorCodes.LOG_UNAVAILABLE,
      retriable: true,
    });
    await Promise.all([a.stop(), b.stop()]);
  });
});
