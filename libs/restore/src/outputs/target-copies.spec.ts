import { describe, expect, it } from 'vitest';
import { AccountedRuns } from './target-copies';

const PS = 4096;

describe('AccountedRuns', () => {
  it('gives the pages of a VMA the stream never named, whatever order data, zero and file runs came in', () => {
    const a = new AccountedRuns(PS);
    const base = 0x10000;
    a.addAll([base + 2 * PS, base + 3 * PS, base + 7 * PS]); // data pages, ascending
    a.add(base + 9 * PS, 2); // a zero run after them
    a.add(base, 1); // a file run before them all
    a.add(base + 3 * PS, 2); // overlapping what is there already
    expect(a.gaps(base, base + 16 * PS)).toEqual([
      { start: base + PS, pages: 1 },
      { start: base + 5 * PS, pages: 2 },
      { start: base + 8 * PS, pages: 1 },
      { start: base + 11 * PS, pages: 5 },
    ]);
  });

  it('gives the whole VMA when nothing was named, and nothing when all of it was', () => {
    expect(new AccountedRuns(PS).gaps(0, 4 * PS)).toEqual([{ start: 0, pages: 4 }]);
    const all = new AccountedRuns(PS);
    all.add(0, 4);
    expect(all.gaps(0, 4 * PS)).toEqual([]);
  });
});
