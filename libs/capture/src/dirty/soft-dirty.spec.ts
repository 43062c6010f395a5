import { describe, expect, it } from 'vitest';
import { HI_PRESENT, HI_SOFT_DIRTY } from '../pagemap/pagemap-bits';
import type { PagemapReader } from '../pagemap/pagemap-reader';
import { detectSoftDirtyDetailed } from './soft-dirty';
import { SoftDirtyMap, markSoftDirty } from './soft-dirty-map';

/** A pagemap whose entry for page p has the soft-dirty bit when dirty(p). */
function fakePagemap(dirty: (page: number) => boolean, maxEntries: number): PagemapReader {
  const words = new Uint32Array(maxEntries * 2);
  return {
    maxEntries,
    words,
    read(addr: number, count: number) {
      for (let k = 0; k < count; k++)
        words[2 * k + 1] = HI_PRESENT | (dirty(addr / 4096 + k) ? HI_SOFT_DIRTY : 0);
    },
  } as unknown as PagemapReader;
}

describe('soft-dirty tracking', () => {
  it('marks exactly the entries with bit 55 set', () => {
    const words = new Uint32Array(2 * 10);
    for (const k of [0, 3, 9]) words[2 * k + 1] = HI_SOFT_DIRTY;
    words[2 * 5 + 1] = HI_PRESENT; // present but clean
    words[2 * 6] = 0xffffffff; // low word (PFN) bits never count
    const out = new Uint8Array(2);
    markSoftDirty(words, 10, out, 0);
    expect([...out]).toEqual([0b00001001, 0b00000010]);
  });

  it('keeps one bit per page per VMA across pagemap windows', () => {
    const pm = fakePagemap((p) => p % 7 === 0, 16);
    const vmas = [
      { start: 0, end: 100 * 4096 },
      { start: 200 * 4096, end: 200 * 4096 },
      { start: 300 * 4096, end: 340 * 4096 },
    ];
    const m = SoftDirtyMap.scan(pm, vmas, 4096);
    for (let p = 0; p < 100; p++) expect(m.isDirty(0, p)).toBe(p % 7 === 0);
    for (let p = 0; p < 40; p++) expect(m.isDirty(2, p)).toBe((300 + p) % 7 === 0);
    expect(m.isDirty(1, 0)).toBe(false);
  });

  it('says whether this kernel tracks soft-dirty pages and why', () => {
    const d = detectSoftDirtyDetailed();
    expect(typeof d.supported).toBe('boolean');
    expect(d.evidence.length).toBeGreaterThan(0);
  });
});
