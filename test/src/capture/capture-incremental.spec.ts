import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Consistency,
  FrameType,
  SnapshotMode,
  decodeFrame,
  newSnapshotId,
  SnapshotWriter,
} from '@pagevault/format';
import {
  allThreadsStopped,
  captureGroup,
  captureSnapshot,
  detectSoftDirty,
  detectSoftDirtyDetailed,
  preCopy,
  readPages,
  writePages,
} from '@pagevault/capture';
import { applySnapshot, collectingWriter, decodeSnapshot, vmaAt, type PageImage } from './helpers/frames';
import { addr, startFixture, type FixtureInfo, type Target } from './helpers/target-process';

/** Every data page of an image equals the process's memory now (call while it is frozen). */
function mismatches(pid: number, image: PageImage, ps: number): string[] {
  const addrs = [...image]
    .filter(([, v]) => v !== 'file')
    .map(([a]) => a)
    .sort((a, b) => a - b);
  const live = readPages(pid, addrs, { pageSize: ps, useProcMem: true });
  return addrs
    .filter((a, i) => live.compare(image.get(a) as Buffer, 0, ps, i * ps, (i + 1) * ps) !== 0)
    .map((a) => a.toString(16));
}

describe('incremental snapshots and pre-copy', () => {
  let t: Target<FixtureInfo>;
  let ps: number;
  beforeEach(async () => {
    t = await startFixture();
    ps = t.info.pageSize;
  });
  afterEach(async () => {
    await t.stop();
  });

  it('this kernel has no soft-dirty tracking, so change detection compares page hashes', () => {
    expect(detectSoftDirty()).toBe(false);
    expect(detectSoftDirtyDetailed().evidence).toMatch(/soft-dirty|SOFT_DIRTY/);
  });

  it('sends only changed pages; unchanged ones become same-as-parent runs that resolve to the right contents', async () => {
    const a = collectingWriter();
    const full = await captureSnapshot({
      pid: t.info.pid,
      writer: a.writer,
      tenant: 't',
      host: 'h',
      wantHashes: true,
    });
    expect(full.hashes!.size).toBe(full.stats.dataPages);
    // The agent's own table: XXH3-128 keyed by this process, 16 bytes a page.
    expect(full.hashes!.kind).toBe('xxh3-128');
    expect(full.hashes!.hashes.length).toBe(full.hashes!.size * 16);
    const image1 = applySnapshot(decodeSnapshot(a.frames, a.snapshotId), undefined, ps);

    const marker = addr(t.info.marker);
    const page = Buffer.alloc(ps, 0x77);
    writePages(t.info.pid, [marker + 5 * ps], page);

    let verify: string[] = ['not checked'];
    const b = collectingWriter((raw) => {
      if (decodeFrame(raw).body.type !== FrameType.SnapshotEnd) return;
      const s = decodeSnapshot(b.frames, b.snapshotId);
      verify = mismatches(t.info.pid, applySnapshot(s, image1, ps), ps);
    });
    const inc = await captureSnapshot({
      pid: t.info.pid,
      writer: b.writer,
      tenant: 't',
      host: 'h',
      parent: { id: a.snapshotId, hashes: full.hashes! },
      wantHashes: true,
    });
    const s2 = decodeSnapshot(b.frames, b.snapshotId);
    expect(s2.begin.mode).toBe(SnapshotMode.Incremental);
    expect(Buffer.from(s2.begin.parentId!)).toEqual(Buffer.from(a.snapshotId));
    expect(inc.stats.changeDetection).toBe('hash');
    expect(verify).toEqual([]);
    const mv = vmaAt(s2, marker);
    expect(mv.data.get(marker + 5 * ps)).toEqual(page);
    expect(mv.parent).toContain(marker + 4 * ps);
    expect(vmaAt(s2, addr(t.info.counters)).data.has(addr(t.info.counters))).toBe(true);
    expect(inc.stats.dataPages).toBeLessThan(full.stats.dataPages / 2);
    expect(inc.stats.parentPages + inc.stats.dataPages).toBe(inc.hashes!.size);
  });

  it.each(['xxh3-128', 'sha256'] as const)('finds a single changed byte with %s page hashes, and keeps the kind along the chain', async (kind) => {
    const a = collectingWriter();
    const full = await captureSnapshot({ pid: t.info.pid, writer: a.writer, tenant: 't', host: 'h', wantHashes: true, changeHash: kind });
    expect(full.hashes!.kind).toBe(kind);
    const image1 = applySnapshot(decodeSnapshot(a.frames, a.snapshotId), undefined, ps);
    const marker = addr(t.info.marker);
    const before = readPages(t.info.pid, [marker + 3 * ps], { pageSize: ps });
    writePages(t.info.pid, [marker + 3 * ps], Buffer.from(before).fill(before[1234]! ^ 0x01, 1234, 1235));
    let verify: string[] = ['not checked'];
    const b = collectingWriter((raw) => {
      if (decodeFrame(raw).body.type !== FrameType.SnapshotEnd) return;
      verify = mismatches(t.info.pid, applySnapshot(decodeSnapshot(b.frames, b.snapshotId), image1, ps), ps);
    });
    const inc = await captureSnapshot({
      pid: t.info.pid, writer: b.writer, tenant: 't', host: 'h', wantHashes: true,
      parent: { id: a.snapshotId, hashes: full.hashes! },
      changeHash: kind === 'sha256' ? 'xxh3-128' : 'sha256', // ignored: the parent's kind is the one that compares
    });
    expect(inc.hashes!.kind).toBe(kind);
    const mv = vmaAt(decodeSnapshot(b.frames, b.snapshotId), marker);
    expect(mv.data.get(marker + 3 * ps)![1234]).toBe(before[1234]! ^ 0x01);
    expect(mv.parent).toContain(marker + 2 * ps);
    expect(mv.parent).toContain(marker + 4 * ps);
    expect(verify).toEqual([]);
  });

  it('pre-copies in live rounds, then freezes for a final round that completes the chain', async () => {
    const writers: { frames: Buffer[]; snapshotId: Uint8Array }[] = [];
    const images: PageImage[] = [];
    let finalCheck: string[] = ['not checked'];
    let stoppedInFinal = true;
    const res = await preCopy({
      pid: t.info.pid,
      tenant: 't',
      host: 'h',
      budgetPages: 2,
      maxRounds: 4,
      round: (n) => {
        const snapshotId = newSnapshotId();
        const frames: Buffer[] = [];
        writers.push({ frames, snapshotId });
        const writer = new SnapshotWriter({
          snapshotId,
          emit: (f) => {
            frames.push(f);
            const type = decodeFrame(f).body.type;
            const s = () => decodeSnapshot(frames, snapshotId);
            if (type === FrameType.SnapshotEnd) images[n - 1] = applySnapshot(s(), images[n - 2], ps);
            const final = s().begin?.consistency === Consistency.PreCopy;
            if (final) stoppedInFinal &&= allThreadsStopped(t.info.pid);
            if (final && type === FrameType.SnapshotEnd)
              finalCheck = mismatches(t.info.pid, images[n - 1]!, ps);
          },
        });
        return { writer, snapshotId };
      },
    });
    expect(res.rounds.length).toBeGreaterThanOrEqual(2);
    expect(res.rounds.at(-1)!.consistency).toBe(Consistency.PreCopy);
    expect(res.rounds.slice(0, -1).every((r) => r.consistency === Consistency.Live)).toBe(true);
    expect(['budget', 'not-shrinking', 'max-rounds']).toContain(res.stoppedBecause);
    expect(res.rounds[1]!.changedPages).toBeLessThan(res.rounds[0]!.changedPages);
    expect(res.rounds.at(-1)!.stats.parentPages).toBeGreaterThan(0);
    expect(stoppedInFinal).toBe(true);
    expect(finalCheck).toEqual([]);
    for (let i = 1; i < writers.length; i++) {
      const s = decodeSnapshot(writers[i]!.frames, writers[i]!.snapshotId);
      expect(s.state).toBe('end');
      expect(Buffer.from(s.begin.parentId!)).toEqual(Buffer.from(writers[i - 1]!.snapshotId));
    }
  });

  it('captures a process tree as one group: all frozen before any is read, thawed after all', async () => {
    const groupId = newSnapshotId();
    const pids = [t.info.pid, t.info.child];
    let allStopped = true;
    const outs = new Map<number, ReturnType<typeof collectingWriter>>();
    const res = await captureGroup({
      targets: { tree: t.info.pid },
      groupId,
      tenant: 't',
      host: 'h',
      snapshotFor: (pid) => {
        const c = collectingWriter(() => {
          allStopped &&= pids.every(allThreadsStopped);
        });
        outs.set(pid, c);
        return { writer: c.writer };
      },
    });
    expect(res.map((r) => r.pid).sort()).toEqual([...pids].sort());
    expect(allStopped).toBe(true);
    for (const pid of pids) expect(allThreadsStopped(pid)).toBe(false);
    const child = outs.get(t.info.child)!;
    const s = decodeSnapshot(child.frames, child.snapshotId);
    expect(s.state).toBe('end');
    expect(Buffer.from(s.begin.groupId!)).toEqual(Buffer.from(groupId));
    expect(vmaAt(s, addr(t.info.shared)).data.get(addr(t.info.shared))!.subarray(0, 5).toString()).toBe(
      'CHILD',
    );
  });
});

describe('pre-copy of a process that dirties its memory faster than a round copies it', () => {
  // 64 MiB, every page rewritten at random nonstop: each live round finds nearly every page changed.
  const DIRTIER = [
    'import random, sys',
    'b = bytearray(64 << 20)',
    'for i in range(0, len(b), 4096): b[i] = 1',
    "sys.stdout.write('ready\\n'); sys.stdout.flush()",
    'n, r = len(b) // 4096, random.Random(1)',
    'while True:',
    '    for _ in range(4096): b[r.randrange(n) * 4096 + 7] = r.randrange(256)',
  ].join('\n');

  it('stops its live rounds once the changed set stops shrinking, freezes for the last one, and leaves the process running', async () => {
    const dirtier = spawn('python3', ['-c', DIRTIER], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => createInterface({ input: dirtier.stdout! }).once('line', r));
      const pid = dirtier.pid!;
      let final = false;
      let finalFrames = 0;
      let stoppedInFinal = true;
      const res = await preCopy({
        pid,
        tenant: 't',
        host: 'h',
        budgetPages: 16,
        maxRounds: 10,
        round: () => {
          const snapshotId = newSnapshotId();
          const writer = new SnapshotWriter({
            snapshotId,
            emit: (f) => {
              const body = decodeFrame(f).body;
              if (body.type === FrameType.SnapshotBegin) final = body.begin.consistency === Consistency.PreCopy;
              if (!final) return;
              finalFrames++;
              stoppedInFinal &&= allThreadsStopped(pid);
            },
          });
          return { writer, snapshotId };
        },
      });
      expect(res.stoppedBecause).toBe('not-shrinking');
      expect(res.rounds.length).toBeLessThan(10);
      const live = res.rounds.slice(0, -1);
      expect(live.every((r) => r.consistency === Consistency.Live)).toBe(true);
      expect(live.at(-1)!.changedPages).toBeGreaterThanOrEqual(live.at(-2)!.changedPages);
      expect(res.rounds.at(-1)!.consistency).toBe(Consistency.PreCopy);
      expect(finalFrames).toBeGreaterThan(2);
      expect(stoppedInFinal).toBe(true); // every frame of the last round read while it was stopped
      // Running again afterwards: its CPU time goes on.
      const cpu = () => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '').split(' ').slice(11, 13).reduce((a, b) => a + Number(b), 0);
      const before = cpu();
      await new Promise((r) => setTimeout(r, 300));
      expect(cpu()).toBeGreaterThan(before);
    } finally {
      dirtier.kill('SIGKILL');
    }
  });
});
