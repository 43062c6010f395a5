import koffi from 'koffi';
import { describe, expect, it } from 'vitest';
import { systemPageSize } from '../memory/libc';
import { readaheadEnds } from '../capture/capture-process';
import { HI_PRESENT } from './pagemap-bits';
import { PagemapReader } from './pagemap-reader';

const ps = systemPageSize();

/** 32 pages of this process's memory, page-aligned, every page written (present). */
function ownPages(): { buf: Buffer; addr: number } {
  const raw = Buffer.allocUnsafeSlow(33 * ps);
  const skip = (ps - Number(koffi.address(raw) % BigInt(ps))) % ps;
  const buf = raw.subarray(skip, skip + 32 * ps).fill(1);
  return { buf, addr: Number(koffi.address(buf)) };
}

describe('PagemapReader', () => {
  it('reads ahead up to `through` and serves later reads inside it without a pread; without `through` it reads afresh', () => {
    const { buf, addr } = ownPages();
    const pm = new PagemapReader(process.pid, ps, 64);
    const fresh = new PagemapReader(process.pid, ps, 64);
    try {
      expect(pm.read(addr, 2, addr + 32 * ps)).toBe(0);
      // Closed: a pread would fail, so these are served from the window read ahead.
      pm.close();
      for (const k of [2, 5, 31]) {
        const b = pm.read(addr + k * ps, 1, addr + 32 * ps);
        expect(b).toBe(k);
        fresh.read(addr + k * ps, 1);
        expect(pm.words[2 * b + 1]).toBe(fresh.words[1]);
        expect(pm.words[2 * b + 1]! & HI_PRESENT).toBe(HI_PRESENT);
      }
      // Past the window, or without `through`: a pread, which the closed file refuses.
      expect(() => pm.read(addr + 31 * ps, 2, addr + 40 * ps)).toThrow();
      expect(() => pm.read(addr + 2 * ps, 1)).toThrow();
    } finally {
      pm.close();
      fresh.close();
    }
    expect(buf[0]).toBe(1);
  });

  it('never reads more than its buffer holds, however far `through` is', () => {
    const { addr } = ownPages();
    const pm = new PagemapReader(process.pid, ps, 8);
    try {
      expect(pm.read(addr, 1, addr + 32 * ps)).toBe(0);
      pm.close();
      expect(pm.read(addr + 7 * ps, 1, addr + 32 * ps)).toBe(7);
      expect(() => pm.read(addr + 8 * ps, 1, addr + 32 * ps)).toThrow();
    } finally {
      pm.close();
    }
  });
});

describe('readaheadEnds', () => {
  it('runs each VMA to the end of the VMAs after it that lie no more than 16 pages apart', () => {
    const v = (s: number, e: number) => ({ start: s * ps, end: e * ps });
    const vmas = [v(0, 1), v(1, 2), v(18, 20), v(37, 40), v(100, 101), v(101, 102)];
    expect(Array.from(readaheadEnds(vmas, ps), (x) => x / ps)).toEqual([20, 20, 20, 40, 102, 102]);
    expect(Array.from(readaheadEnds([], ps))).toEqual([]);
  });
});
