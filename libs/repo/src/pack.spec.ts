import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { BLOB_PAGES, PackBuilder, inflateBlob, inflateBlobInto, readPackTrailer } from './pack';

const PS = 4096;

describe('packs', () => {
  it('holds each added page, found through its trailer and inflated from its blob', () => {
    const b = new PackBuilder(PS, 1);
    const pages = Array.from({ length: 40 }, (_, i) => (i % 3 ? randomBytes(PS) : Buffer.alloc(PS, i)));
    const hs = pages.map((p) => createHash('sha256').update(p).digest());
    pages.forEach((p, i) => b.add(hs[i]!, p, 0));
    const sealed = b.seal()!;
    expect(sealed.sha).toBe(createHash('sha256').update(sealed.bytes).digest('hex'));
    const entries = readPackTrailer(sealed.bytes, 'k');
    expect(entries.length).toBe(40);
    entries.forEach((e, i) => {
      expect(e.hash).toEqual(hs[i]);
      expect(e.blobPages).toBe(i < 32 ? BLOB_PAGES : 8);
      const raw = inflateBlob(sealed.bytes.subarray(e.blobOffset, e.blobOffset + e.blobLength), e.blobPages, PS, 'k');
      expect(raw.subarray(e.slot * PS, (e.slot + 1) * PS)).toEqual(pages[i]);
    });
    expect(b.seal()).toBeUndefined();
  });

  it('refuses a pack without a trailer or with a blob beyond it', () => {
    expect(() => readPackTrailer(Buffer.alloc(100), 'k')).toThrow(/no pack trailer/);
    const b = new PackBuilder(PS, 1);
    b.add(Buffer.alloc(32, 1), randomBytes(PS), 0);
    const bytes = Buffer.from(b.seal()!.bytes);
    bytes.writeUInt32LE(1 << 30, bytes.length - 8 - 44 - 8 + 8 + 32); // blob offset of entry 0
    expect(() => readPackTrailer(bytes, 'k')).toThrow(/PV|pack|trailer|blob/);
    // A blob said to hold more pages than any does (a reader sizes its buffers by BLOB_PAGES).
    const c = new PackBuilder(PS, 1);
    c.add(Buffer.alloc(32, 2), randomBytes(PS), 0);
    const big = Buffer.from(c.seal()!.bytes);
    big[big.length - 8 - 44 + 42] = BLOB_PAGES + 1; // entry 0's blob pages
    expect(() => readPackTrailer(big, 'k')).toThrow(/says it holds 17 pages/);
  });

  it('names a blob that does not inflate as corrupt', () => {
    expect(() => inflateBlob(Buffer.from('not zstd'), 1, PS, 'pack x')).toThrow(expect.objectContaining({ code: 'PV_OBJECT_CORRUPT' }));
  });

  it('names a blob that inflates to more or fewer pages than its entry says as corrupt', () => {
    const b = new PackBuilder(PS, 1);
    for (let i = 0; i < 2; i++) b.add(Buffer.alloc(32, i + 1), randomBytes(PS), 0);
    const sealed = b.seal()!;
    const e = readPackTrailer(Buffer.from(sealed.bytes), 'k')[0]!;
    const z = sealed.bytes.subarray(e.blobOffset, e.blobOffset + e.blobLength);
    expect(inflateBlob(z, 2, PS, 'k').length).toBe(2 * PS);
    for (const pages of [1, 3]) {
      expect(() => inflateBlobInto(z, Buffer.alloc(pages * PS), 'pack x')).toThrow(expect.objectContaining({ code: 'PV_OBJECT_CORRUPT' }));
    }
  });
});
