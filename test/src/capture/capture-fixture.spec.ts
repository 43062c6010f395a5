import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consistency, FrameType, SnapshotMode, VmaFlag, VmaKind, decodeFrame } from '@pagevault/format';
import {
  allThreadsStopped,
  captureSnapshot,
  readPages,
  readThreadStates,
  type CaptureResult,
} from '@pagevault/capture';
import { collectingWriter, decodeSnapshot, vmaAt, type DecodedSnapshot } from './helpers/frames';
import { addr, startFixture, type FixtureInfo, type Target } from './helpers/target-process';

describe('captureSnapshot of a frozen process', () => {
  let t: Target<FixtureInfo>;
  let snap: DecodedSnapshot;
  let result: CaptureResult;
  let ps: number;
  /** Checks made inside emit, while the target is frozen. */
  const duringCapture = { stoppedEveryFrame: true, mismatches: [] as string[], dataPagesChecked: 0 };

  beforeAll(async () => {
    t = await startFixture();
    ps = t.info.pageSize;
    const { writer, frames, snapshotId } = collectingWriter((raw) => {
      if (!allThreadsStopped(t.info.pid)) duringCapture.stoppedEveryFrame = false;
      // Every data page must equal what the still-frozen process holds at that address right now.
      const f = decodeFrame(raw);
      if (f.body.type === FrameType.PageChunk) {
        const live = readPages(t.info.pid, f.body.addresses, { pageSize: ps, useProcMem: true });
        for (let i = 0; i < f.body.addresses.length; i++) {
          duringCapture.dataPagesChecked++;
          if (live.compare(f.body.data, i * ps, (i + 1) * ps, i * ps, (i + 1) * ps) !== 0) {
            duringCapture.mismatches.push(f.body.addresses[i]!.toString(16));
          }
        }
      }
    });
    result = await captureSnapshot({ pid: t.info.pid, writer, tenant: 't1', host: 'h1', batchPages: 64 });
    snap = decodeSnapshot(frames, snapshotId);
  });

  afterAll(async () => {
    await t?.stop();
  });

  it('writes a complete, valid stream: begin, VMAs in address order, end', () => {
    expect(snap.state).toBe('end');
    expect(snap.begin.pid).toBe(t.info.pid);
    expect(snap.begin.mode).toBe(SnapshotMode.Full);
    expect(snap.begin.consistency).toBe(Consistency.Frozen);
    expect(snap.begin.cmdline.split('\0')[1]).toBe('fixture');
    expect(snap.vmas.length).toBe(result.stats.vmas);
    const starts = snap.vmas.map((v) => v.header.start);
    expect([...starts].sort((a, b) => a - b)).toEqual(starts);
  });

  it('sends every data page exactly as the frozen process holds it', () => {
    expect(duringCapture.dataPagesChecked).toBe(result.stats.dataPages);
    expect(duringCapture.mismatches).toEqual([]);
  });

  it('keeps every thread stopped while it reads', () => {
    expect(duringCapture.stoppedEveryFrame).toBe(true);
    expect([...readThreadStates(t.info.pid).values()]).not.toContain('T');
  });

  it('puts the markers at their addresses', () => {
    const base = addr(t.info.marker);
    for (let i = 0; i < 16; i++) {
      const page = vmaAt(snap, base + i * ps).data.get(base + i * ps)!;
      const text = `PVMARK:${i}`;
      expect(page.toString('latin1', 0, text.length)).toBe(text);
      expect(page[text.length]).toBe(0);
      expect(page[ps - 1]).toBe(0x40 + i);
    }
  });

  it('sends the zero region (written or only read) as zero runs, not data', () => {
    const base = addr(t.info.zero);
    const v = vmaAt(snap, base);
    for (let i = 0; i < 8; i++) {
      expect(v.zero).toContain(base + i * ps);
      expect(v.data.has(base + i * ps)).toBe(false);
    }
  });

  it('leaves the never-touched region out', () => {
    const base = addr(t.info.untouched);
    const v = vmaAt(snap, base);
    for (let i = 0; i < 16; i++) {
      const a = base + i * ps;
      expect(v.data.has(a) || v.zero.includes(a) || v.file.includes(a)).toBe(false);
    }
    expect(result.stats.skippedUntouched).toBeGreaterThanOrEqual(16);
  });

  it('sends unmodified private file pages as file runs and the copied-on-write one as data', () => {
    const base = addr(t.info.file);
    const v = vmaAt(snap, base);
    expect(v.header.kind).toBe(VmaKind.PrivateFile);
    expect(v.header.path).toBe(t.info.filePath);
    expect(v.file).toEqual([base, base + ps, base + 3 * ps]);
    expect(
      v.data
        .get(base + 2 * ps)!
        .subarray(0, 5)
        .toString(),
    ).toBe('COWED');
    expect(
      readFileSync(t.info.filePath)
        .subarray(2 * ps, 2 * ps + 5)
        .toString(),
    ).toBe('ccccc');
  });

  it('gives [vdso] and [vvar] a header only', () => {
    const vdso = snap.vmas.find((v) => v.header.path === '[vdso]')!;
    expect(vdso.header.kind).toBe(VmaKind.Vdso);
    expect(vdso.header.flags & VmaFlag.NoContents).toBeTruthy();
    expect(vdso.data.size + vdso.zero.length).toBe(0);
    const vvar = snap.vmas.find((v) => v.header.path.startsWith('[vvar'));
    if (vvar) expect(vvar.header.flags & VmaFlag.NoContents).toBeTruthy();
  });

  it('dumps a shared-memory object mapped twice only once', () => {
    const m1 = vmaAt(snap, addr(t.info.memfd1));
    const m2 = vmaAt(snap, addr(t.info.memfd2));
    expect(m1.header.sharedKey).toMatch(/^shmem:/);
    expect(m1.header.sharedKey).toBe(m2.header.sharedKey);
    const [first, second] = m1.header.start < m2.header.start ? [m1, m2] : [m2, m1];
    expect(first.header.flags & VmaFlag.SharedElsewhere).toBe(0);
    expect(second.header.flags & VmaFlag.SharedElsewhere).toBeTruthy();
    expect(second.data.size + second.zero.length).toBe(0);
    expect(m1.data.get(addr(t.info.memfd1)) ?? m2.data.get(addr(t.info.memfd2))).toBeDefined();
  });

  it('captures a shared anonymous mapping including the pages only the forked child wrote', () => {
    const base = addr(t.info.shared);
    const v = vmaAt(snap, base);
    expect(v.header.kind).toBe(VmaKind.SharedAnon);
    expect(v.header.flags & VmaFlag.Shared).toBeTruthy();
    expect(v.header.sharedKey).toMatch(/^shmem:[0-9a-f]+:[0-9a-f]+:\d+$/);
    expect(
      v.data
        .get(base + ps)!
        .subarray(0, 6)
        .toString(),
    ).toBe('PARENT');
    expect(v.data.get(base)!.subarray(0, 5).toString()).toBe('CHILD');
    expect(
      v.data
        .get(base + 3 * ps)!
        .subarray(0, 6)
        .toString(),
    ).toBe('CHILD3');
    expect(v.data.has(base + 2 * ps) || v.zero.includes(base + 2 * ps)).toBe(false);
  });

  it('reads a PROT_NONE region that holds data through /proc/PID/mem', () => {
    const base = addr(t.info.protnone);
    const v = vmaAt(snap, base);
    expect(v.header.prot).toBe(0);
    expect(v.data.get(base)!.subarray(0, 6).toString()).toBe('HIDDEN');
  });

  it('accounts for every page it looked at', () => {
    const s = result.stats;
    expect(s.dataPages).toBe(snap.vmas.reduce((n, v) => n + v.data.size, 0));
    expect(s.zeroPages).toBe(snap.vmas.reduce((n, v) => n + v.zero.length, 0));
    expect(s.filePages).toBe(snap.vmas.reduce((n, v) => n + v.file.length, 0));
    expect(s.bytesRead).toBeGreaterThanOrEqual((s.dataPages + s.zeroPages) * ps);
    expect(s.skippedByReason['shared-elsewhere']).toBe(2);
    expect(s.freezeMs).toBeGreaterThan(0);
    expect(s.readCalls).toBeLessThan(s.dataPages + s.zeroPages);
  });
});
