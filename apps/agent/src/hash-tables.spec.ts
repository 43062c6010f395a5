import { PageHashTable } from '@pagevault/capture';
import { describe, expect, it } from 'vitest';
import { HashTables } from './hash-tables';

/** A table of n pages of XXH3 hashes: 24 bytes a page. */
const table = (n: number) => new PageHashTable(1, 4096, new Float64Array(n), Buffer.alloc(n * 16), false, 'xxh3-128');

describe('HashTables', () => {
  it('keeps the newest tables within its bytes, dropping the oldest first', () => {
    const h = new HashTables(24 * 1000);
    h.keep('a', table(400));
    h.keep('b', table(400));
    expect([h.has('a'), h.has('b'), h.byteLength]).toEqual([true, true, 24 * 800]);
    h.keep('c', table(400));
    expect([h.has('a'), h.has('b'), h.has('c'), h.byteLength]).toEqual([false, true, true, 24 * 800]);
  });

  it('keeps the newest table even when it alone is over the bytes, and counts a table kept again once', () => {
    const h = new HashTables(24 * 100);
    h.keep('a', table(50));
    h.keep('big', table(500));
    expect([h.has('a'), h.has('big'), h.byteLength]).toEqual([false, true, 24 * 500]);
    h.keep('big', table(10));
    expect(h.byteLength).toBe(24 * 10);
    expect(h.get('big')!.size).toBe(10);
  });
});
