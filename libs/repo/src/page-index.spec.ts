import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PageIndex } from './page-index';

const h = (i: number) => createHash('sha256').update(String(i)).digest();

describe('PageIndex', () => {
  it('finds every page it was given and none it was not, across growth', () => {
    const idx = new PageIndex(4);
    for (let i = 0; i < 5000; i++) idx.add(h(i), 0, { pack: `p${i % 7}`, blobOffset: i, blobLength: 10, slot: i % 16, blobPages: 16, depth: i % 9 });
    expect(idx.size).toBe(5000);
    for (let i = 0; i < 5000; i++) expect(idx.get(h(i))).toEqual({ pack: `p${i % 7}`, blobOffset: i, blobLength: 10, slot: i % 16, blobPages: 16, depth: i % 9 });
    for (let i = 5000; i < 6000; i++) expect(idx.has(h(i))).toBe(false);
    expect(idx.packs.length).toBe(7);
  });

  it('keeps the first location when a page is added twice', () => {
    const idx = new PageIndex();
    expect(idx.add(h(1), 0, { pack: 'a', blobOffset: 1, blobLength: 1, slot: 0, blobPages: 1 })).toBe(true);
    expect(idx.add(h(1), 0, { pack: 'b', blobOffset: 2, blobLength: 2, slot: 0, blobPages: 1 })).toBe(false);
    expect(idx.size).toBe(1);
    expect(idx.get(h(1))!.pack).toBe('a');
  });

  it('tells apart hashes that differ only in their last byte (same bucket, probed)', () => {
    const idx = new PageIndex(4);
    const a = h(3);
    const b = Buffer.from(a);
    b[31] ^= 1;
    idx.add(a, 0, { pack: 'a', blobOffset: 1, blobLength: 1, slot: 0, blobPages: 1 });
    expect(idx.has(b)).toBe(false);
    idx.add(b, 0, { pack: 'b', blobOffset: 2, blobLength: 1, slot: 0, blobPages: 1 });
    expect([idx.get(a)!.pack, idx.get(b)!.pack, idx.size]).toEqual(['a', 'b', 2]);
    expect(idx.packOf(idx.locate(b)) + idx.blobOffsetOf(idx.locate(b))).toBe('b2');
  });

  it('reads hashes at an offset inside a larger buffer', () => {
    const idx = new PageIndex();
    const buf = Buffer.concat([Buffer.alloc(7), h(9)]);
    idx.add(buf, 7, { pack: 'x', blobOffset: 0, blobLength: 1, slot: 0, blobPages: 1 });
    expect(idx.has(h(9))).toBe(true);
    expect(idx.has(buf, 7)).toBe(true);
  });

  it('costs under 128 bytes a page at one million pages (no object per page)', () => {
    const idx = new PageIndex();
    const hash = Buffer.alloc(32);
    for (let i = 0; i < 1_000_000; i++) {
      hash.writeUInt32LE(Math.imul(i, 2654435761) >>> 0, 0);
      hash.writeUInt32LE(i, 4);
      idx.add(hash, 0, { pack: 'p', blobOffset: i, blobLength: 1, slot: 0, blobPages: 1 });
    }
    const perPage = idx.bytes / idx.size;
    console.log(`page index: ${idx.size} pages, ${(idx.bytes / 2 ** 20).toFixed(1)} MiB, ${perPage.toFixed(1)} bytes/page`);
    expect(perPage).toBeLessThan(128);
  });
});
