import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { allThreadsStopped } from '@pagevault/capture';
import { ErrorCodes } from '@pagevault/errors';
import { FrameType, type Frame } from '@pagevault/format';
import { writeLiveProcess } from '@pagevault/restore';
import { captureFrames, replay, selectRanges, type Range } from './helpers/capture-frames';
import { readProcessMemory, startMemtarget, type Region, type Running, type SourceInfo } from './helpers/memtarget';

let src: Running<SourceInfo>;
let frames: Frame[];
let ranges: Range[];
const targets: Running<{ pid: number }>[] = [];

const regionArg = (r: Region) => `${r.start.replace(/^0x/, '')}:${r.pages}:${r.prot}`;

/** A prepared target, stopped by the test (as an orchestrator may have it), unless `running`. */
async function startTarget(regions: Region[], o: { running?: boolean; scribble?: boolean } = {}): Promise<number> {
  const t = await startMemtarget<{ pid: number }>(['target', ...(o.scribble ? ['--scribble'] : []), ...regions.map(regionArg)]);
  targets.push(t);
  if (!o.running) {
    process.kill(t.info.pid, 'SIGSTOP');
    while (!allThreadsStopped(t.info.pid)) await new Promise((r) => setTimeout(r, 5));
  }
  return t.info.pid;
}

/** The process's state letter in /proc/PID/stat (T: stopped). */
const stateOf = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];

beforeAll(async () => {
  src = await startMemtarget<SourceInfo>(['source']);
  frames = await captureFrames(src.info.pid);
  const ps = src.info.pageSize;
  ranges = src.info.regions.map((r) => ({ start: Number(r.start), end: Number(r.start) + r.pages * ps }));
});

afterAll(async () => {
  await Promise.all([src, ...targets].map((p) => p?.stop()));
});

describe('writeLiveProcess into a process prepared with the same layout', () => {
  it('makes the target memory equal to the source, read-only regions included', async () => {
    const pid = await startTarget(src.info.regions);
    const stats = await writeLiveProcess(replay(selectRanges(frames, ranges)), pid);
    for (const r of ranges) {
      const want = readProcessMemory(src.info.pid, r.start, r.end - r.start);
      const got = readProcessMemory(pid, r.start, r.end - r.start);
      expect(got.equals(want), `range 0x${r.start.toString(16)}`).toBe(true);
    }
    // The rw region (64 pages) and the read-only one (16 pages), minus pages the source never touched.
    expect(stats.pages.data).toBeGreaterThan(50);
    expect(stats.verifiedPages).toBe(stats.pages.data + stats.zeroPagesWritten);
    // The target had garbage on pages the source has zero: only those were written, then checked.
    expect(stats.zeroPagesWritten).toBeGreaterThan(0);
    expect(stats.zeroPagesWritten).toBeLessThan(stats.pages.zero);
    expect(stats.syscalls).toBeLessThan(stats.verifiedPages);
    // Stopped by someone else before: not frozen again, and left stopped.
    expect(stats.frozenMs).toBe(0);
    expect(stateOf(pid)).toBe('T');
  });

  it('freezes a running target that keeps writing to its memory for the writes and their checks, then lets it run', async () => {
    const pid = await startTarget(src.info.regions, { running: true, scribble: true });
    const stats = await writeLiveProcess(replay(selectRanges(frames, ranges)), pid);
    expect(stats.frozenMs).toBeGreaterThan(0);
    expect(stats.verifiedPages).toBe(stats.pages.data + stats.zeroPagesWritten);
    expect(stateOf(pid)).not.toBe('T');
    // Every page equal to the source's but page 1 of the first region, which the target goes on writing.
    const ps = src.info.pageSize;
    const [rw] = ranges;
    const scribbled = rw!.start + ps;
    for (const r of [{ start: rw!.start, end: scribbled }, { start: scribbled + ps, end: rw!.end }, ...ranges.slice(1)]) {
      const want = readProcessMemory(src.info.pid, r.start, r.end - r.start);
      expect(readProcessMemory(pid, r.start, r.end - r.start).equals(want), `range 0x${r.start.toString(16)}`).toBe(true);
    }
    const counter = () => readProcessMemory(pid, scribbled, 8).readBigUInt64LE();
    const before = counter();
    await new Promise((r) => setTimeout(r, 20));
    expect(counter()).not.toBe(before); // running again
  });

  it('refuses a target that does not map a VMA, naming the missing range', async () => {
    const [rw, ro] = src.info.regions;
    const pid = await startTarget([rw!]);
    const ps = src.info.pageSize;
    const missing = `${ro!.start}-0x${(Number(ro!.start) + ro!.pages * ps).toString(16)}`;
    const err = await writeLiveProcess(replay(selectRanges(frames, ranges)), pid).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.TARGET_MISMATCH, details: { pid, missing } });
    expect((err as Error).message).toContain(missing);
  });

  it("given the snapshot's layout, refuses a target missing a later VMA before writing anything", async () => {
    // The read-only region lies below the writable one, so it comes first in the stream: the target
    // maps it and lacks the second.
    const [rw, ro] = src.info.regions;
    const pid = await startTarget([ro!]);
    const r = ranges[1]!;
    const before = readProcessMemory(pid, r.start, r.end - r.start);
    const selected = selectRanges(frames, ranges);
    const layout = selected.flatMap((f) => (f.body.type === FrameType.VmaBegin ? [f.body.vma] : []));
    expect(layout.map((v) => v.start)).toEqual([ranges[1]!.start, ranges[0]!.start]);
    const err = await writeLiveProcess(replay(selected), pid, { layout }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.TARGET_MISMATCH, message: expect.stringContaining(rw!.start) });
    expect(readProcessMemory(pid, r.start, r.end - r.start).equals(before)).toBe(true); // the first VMA untouched
    expect(before.equals(readProcessMemory(src.info.pid, r.start, r.end - r.start))).toBe(false); // (it would have changed)
    expect(stateOf(pid)).toBe('T'); // stopped by the test before: left so
  });

  it('leaves a running target stopped, not running half restored, when the restore fails after its first write', async () => {
    const [rw, ro] = src.info.regions;
    const pid = await startTarget([ro!], { running: true });
    const selected = selectRanges(frames, ranges);
    const layout = selected.flatMap((f) => (f.body.type === FrameType.VmaBegin ? [f.body.vma] : []));
    // Refused before any write (the layout checked first): thawed, running as before.
    await expect(writeLiveProcess(replay(selected), pid, { layout })).rejects.toMatchObject({ code: ErrorCodes.TARGET_MISMATCH });
    expect(stateOf(pid)).not.toBe('T');
    // Without the layout the first VMA is written before the second is found missing: left stopped, and said.
    const r = ranges[1]!;
    const err = await writeLiveProcess(replay(selected), pid).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.TARGET_MISMATCH, details: { pid, leftStopped: true } });
    expect((err as Error).message).toMatch(new RegExp(`${rw!.start}.*; process ${pid} is left stopped, part restored: restore it again, or kill it$`));
    expect(readProcessMemory(pid, r.start, r.end - r.start).equals(readProcessMemory(src.info.pid, r.start, r.end - r.start))).toBe(true); // written
    expect(stateOf(pid)).toBe('T');
  });

  it('rolls a process back to itself leaving its shared file mappings (read-only and writable) to their files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pv-shared-file-'));
    const ro = join(dir, 'ro.bin');
    const rw = join(dir, 'rw.bin');
    writeFileSync(ro, Buffer.alloc(65536, 0x11));
    writeFileSync(rw, Buffer.alloc(65536, 0x22));
    // Maps ro r--s and rw rw-s (as glibc maps its gconv cache), touches both; on a line, writes rw.
    const py = spawn('python3', ['-c', `
import mmap, sys
a = open(${JSON.stringify(ro)}, 'rb'); m1 = mmap.mmap(a.fileno(), 0, access=mmap.ACCESS_READ)
b = open(${JSON.stringify(rw)}, 'r+b'); m2 = mmap.mmap(b.fileno(), 0)
x = m1[:]; y = m2[:]
print('ready', flush=True)
sys.stdin.readline(); m2[0:4096] = b'\x33' * 4096; m2.flush(); print('written', flush=True)
sys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: py.stdout! })[Symbol.asyncIterator]();
    try {
      expect((await lines.next()).value).toBe('ready');
      const own = await captureFrames(py.pid!);
      py.stdin!.write('go\n');
      expect((await lines.next()).value).toBe('written');
      const stats = await writeLiveProcess(replay(own), py.pid!);
      // 16 pages of each file, all touched (and any its libc maps shared): none written into the mappings.
      expect(stats.sharedFileSkipped).toBeGreaterThanOrEqual(32);
      expect(readFileSync(rw).subarray(0, 4096).equals(Buffer.alloc(4096, 0x33))).toBe(true);
      expect(readFileSync(ro).equals(Buffer.alloc(65536, 0x11))).toBe(true);
      expect(stats.verifiedPages).toBeGreaterThan(0);
    } finally {
      py.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('captures and rolls back a process with a guard page (MADV_GUARD_INSTALL), which reads as swapped but faults', async () => {
    // Four private anonymous pages, markers in the first and last, a guard page installed on the second.
    const py = spawn('python3', ['-c', `
import ctypes, mmap, sys
m = mmap.mmap(-1, 4 * 4096, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m[0:4] = b'AAAA'; m[3 * 4096:3 * 4096 + 4] = b'DDDD'
m.madvise(102, 4096, 4096)  # MADV_GUARD_INSTALL
print(ctypes.addressof(ctypes.c_char.from_buffer(m)), flush=True)
sys.stdin.readline(); m[0:4] = b'aaaa'; m[3 * 4096:3 * 4096 + 4] = b'dddd'; print('written', flush=True)
sys.stdin.read()`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: py.stdout! })[Symbol.asyncIterator]();
    try {
      const at = Number((await lines.next()).value);
      expect(at).toBeGreaterThan(0);
      const own = await captureFrames(py.pid!);
      const data = own.flatMap((f) => (f.body.type === FrameType.PageChunk ? [...f.body.addresses] : []));
      expect(data).toContain(at);
      expect(data).not.toContain(at + 4096); // the guard page holds nothing to read
      py.stdin!.write('go\n');
      expect((await lines.next()).value).toBe('written');
      await writeLiveProcess(replay(own), py.pid!);
      const got = readProcessMemory(py.pid!, at, 4);
      const last = readProcessMemory(py.pid!, at + 3 * 4096, 4);
      expect([got.toString(), last.toString()]).toEqual(['AAAA', 'DDDD']);
    } finally {
      py.kill('SIGKILL');
    }
  });

  it('fails with no such process for a pid that is gone', async () => {
    await expect(writeLiveProcess(replay(frames), 0x3fffffff)).rejects.toMatchObject({ code: ErrorCodes.NO_SUCH_PROCESS });
  });
});
