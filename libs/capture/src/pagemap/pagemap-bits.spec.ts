import { describe, expect, it } from 'vitest';
import {
  HI_EXCLUSIVE,
  HI_FILE_SHARED,
  HI_GUARD,
  HI_PRESENT,
  HI_SOFT_DIRTY,
  HI_SWAPPED,
  decodePagemapEntry,
  decodePagemapHigh,
  isUntouched,
} from './pagemap-bits';

const bit = (n: number): bigint => 1n << BigInt(n);

describe('pagemap entry bits', () => {
  it('decodes each flag from its documented bit', () => {
    expect(decodePagemapEntry(bit(63))).toMatchObject({ present: true, swapped: false });
    expect(decodePagemapEntry(bit(62))).toMatchObject({ present: false, swapped: true });
    expect(decodePagemapEntry(bit(61)).fileOrSharedAnon).toBe(true);
    expect(decodePagemapEntry(bit(56)).exclusive).toBe(true);
    expect(decodePagemapEntry(bit(55)).softDirty).toBe(true);
  });

  it('ignores the PFN / swap offset bits below 55', () => {
    expect(decodePagemapEntry((1n << 55n) - 1n)).toEqual({
      present: false,
      swapped: false,
      fileOrSharedAnon: false,
      exclusive: false,
      softDirty: false,
    });
  });

  it('decodes a present, exclusive, soft-dirty anonymous page with a PFN', () => {
    const e = bit(63) | bit(56) | bit(55) | 0x12345n;
    expect(decodePagemapEntry(e)).toEqual({
      present: true,
      swapped: false,
      fileOrSharedAnon: false,
      exclusive: true,
      softDirty: true,
    });
  });

  it('has high-word masks that agree with the 64-bit decoding', () => {
    const hiOf = (e: bigint) => Number(e >> 32n);
    expect(hiOf(bit(63))).toBe(HI_PRESENT >>> 0);
    expect(hiOf(bit(62))).toBe(HI_SWAPPED);
    expect(hiOf(bit(61))).toBe(HI_FILE_SHARED);
    expect(hiOf(bit(56))).toBe(HI_EXCLUSIVE);
    expect(hiOf(bit(55))).toBe(HI_SOFT_DIRTY);
    // Uint32Array hands the word out unsigned; the masks must work on that representation.
    const words = new Uint32Array(new BigUint64Array([bit(63) | bit(55)]).buffer);
    expect(decodePagemapHigh(words[1])).toMatchObject({ present: true, softDirty: true });
  });

  it('calls a page untouched only when neither present nor swapped', () => {
    expect(isUntouched(0)).toBe(true);
    expect(isUntouched(HI_FILE_SHARED | HI_SOFT_DIRTY)).toBe(true);
    expect(isUntouched(HI_PRESENT)).toBe(false);
    expect(isUntouched(HI_SWAPPED)).toBe(false);
  });

  it('calls a guard page untouched: the entry a guard marker gives (swapped, bit 58, as read on Linux 6.18)', () => {
    const hi = Number((0x440000000000009fn >> 32n) & 0xffffffffn);
    expect([hi & HI_SWAPPED, hi & HI_GUARD]).toEqual([HI_SWAPPED, HI_GUARD]);
    expect(isUntouched(hi)).toBe(true);
  });
});
