import { describe, expect, it } from 'vitest';
import { chunkRuns, isZero, splitRun } from './page-runs';

describe('page runs', () => {
  it('groups consecutive chunk pages into one run each', () => {
    const a = [0x1000, 0x2000, 0x3000, 0x5000, 0x9000, 0xa000];
    expect(chunkRuns(a, 0x1000)).toEqual([
      { addr: 0x1000, first: 0, pages: 3 },
      { addr: 0x5000, first: 3, pages: 1 },
      { addr: 0x9000, first: 4, pages: 2 },
    ]);
  });

  it('caps a run at maxPages', () => {
    const a = Array.from({ length: 5 }, (_, i) => 0x10000 + i * 0x1000);
    expect(chunkRuns(a, 0x1000, 2).map((r) => r.pages)).toEqual([2, 2, 1]);
  });

  it('splits a long run into bounded pieces', () => {
    expect([...splitRun(0x1000, 5, 0x1000, 2)]).toEqual([
      { start: 0x1000, pages: 2 },
      { start: 0x3000, pages: 2 },
      { start: 0x5000, pages: 1 },
    ]);
  });

  it('tells zero ranges from non-zero ones, whatever the offset', () => {
    const b = Buffer.alloc(200_000);
    expect(isZero(b)).toBe(true);
    b[150_001] = 1;
    expect(isZero(b)).toBe(false);
    expect(isZero(b, 0, 150_001)).toBe(true);
    expect(isZero(b, 150_001, 150_002)).toBe(false);
    expect(isZero(b, 150_002)).toBe(true);
  });
});
