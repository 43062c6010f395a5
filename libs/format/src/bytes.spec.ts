import { ErrorCodes } from '@pagevault/errors';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter, utf8 } from './bytes';
import { codeOf } from './test-helpers';


const u64le = (v: bigint) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(v);
  return b;
};
const readU64 = (v: bigint) => new ByteReader(u64le(v), 0, 8, 'test').u64('x');

describe('ByteReader', () => {
  it('reads little-endian integers and moves forward', () => {
    const b = Buffer.from('01 0203 04050607 08090a0b0c0d0e00'.replace(/ /g, ''), 'hex');
    const r = new ByteReader(b, 0, b.length, 'test');
    expect([r.u8('a'), r.u16('b'), r.u32('c')]).toEqual([0x01, 0x0302, 0x07060504]);
    expect(r.u64('d')).toBe(0x0e_0d0c_0b0a_0908);
    r.done();
  });

  it('refuses every read that would pass its end, naming the field, and never reads beyond it', () => {
    const b = Buffer.alloc(16, 0xff);
    for (const [n, read] of [
      [1, (r: ByteReader) => r.u8('f')],
      [2, (r: ByteReader) => r.u16('f')],
      [4, (r: ByteReader) => r.u32('f')],
      [8, (r: ByteReader) => r.u64('f')],
      [5, (r: ByteReader) => r.bytes(5, 'f')],
    ] as const) {
      for (let avail = 0; avail < n; avail++) {
        const r = new ByteReader(b, 4, 4 + avail, 'test');
        expect(codeOf(() => read(r))).toBe(ErrorCodes.FRAME_MALFORMED);
        expect(r.pos).toBe(4);
      }
    }
    expect(() => new ByteReader(b, 0, 4, 'frame 9').u64('start')).toThrow(/frame 9: start runs past the end/);
  });

  it('refuses a negative or non-finite need, so a computed size can never wrap around', () => {
    const r = new ByteReader(Buffer.alloc(8), 0, 8, 'test');
    expect(codeOf(() => r.need(-1, 'x'))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(codeOf(() => r.need(Infinity, 'x'))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(codeOf(() => r.need(2 ** 32 * 65544, 'x'))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it('reports trailing bytes', () => {
    const r = new ByteReader(Buffer.alloc(3), 0, 3, 'test');
    r.u16('a');
    expect(codeOf(() => r.done())).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  describe('u64', () => {
    it('returns every value below 2^53 exactly', () => {
      for (const v of [0n, 1n, 0xffff_ffffn, 0x1_0000_0000n, 2n ** 53n - 1n]) expect(readU64(v)).toBe(Number(v));
    });

    it('accepts values at or above 2^53 only when they are multiples of 4096, which doubles hold exactly', () => {
      for (const v of [2n ** 53n, 2n ** 53n + 4096n, 0xffff_ffff_ff60_0000n, 0xffff_ffff_ffff_f000n]) {
        const n = readU64(v);
        expect(BigInt(n)).toBe(v);
      }
      for (const v of [2n ** 53n + 1n, 2n ** 53n + 2048n, 0xffff_ffff_ff60_0001n, 0xffff_ffff_ffff_ffffn]) {
        expect(codeOf(() => readU64(v))).toBe(ErrorCodes.FRAME_MALFORMED);
      }
    });

    it('round-trips every page-aligned 64-bit address through ByteWriter', () => {
      fc.assert(
        fc.property(fc.bigInt({ min: 0n, max: 2n ** 52n - 1n }), (page) => {
          const v = page * 4096n;
          const b = Buffer.alloc(8);
          new ByteWriter(b).u64(Number(v));
          expect(b.readBigUInt64LE()).toBe(v);
          expect(BigInt(new ByteReader(b, 0, 8, 't').u64('a'))).toBe(v);
        }),
        { numRuns: 2000 },
      );
    });
  });

  describe('str', () => {
    const strBuf = (len: number, body: Buffer) => Buffer.concat([Buffer.from([len & 0xff, len >> 8]), body]);

    it('reads a u16 length and that many bytes of UTF-8', () => {
      const b = strBuf(5, Buffer.from('héllo'.slice(0, 4)));
      expect(new ByteReader(b, 0, b.length, 't').str('s')).toBe('héll');
    });

    it('refuses a length longer than what is left of the frame', () => {
      const b = strBuf(0xffff, Buffer.from('abc'));
      expect(codeOf(() => new ByteReader(b, 0, b.length, 't').str('path'))).toBe(ErrorCodes.FRAME_MALFORMED);
    });

    it.each([
      ['a lone continuation byte', '80'],
      ['0xff', 'ff'],
      ['an overlong NUL', 'c080'],
      ['an encoded surrogate', 'eda080'],
      ['a sequence cut short', 'e282'],
    ])('refuses %s, which would decode lossily and re-encode to other bytes', (_, hex) => {
      const body = Buffer.from(hex, 'hex');
      const b = strBuf(body.length, body);
      expect(codeOf(() => new ByteReader(b, 0, b.length, 't').str('s'))).toBe(ErrorCodes.FRAME_MALFORMED);
    });

    it('keeps a byte order mark and NULs as they are', () => {
      const s = '\uFEFFa\0b';
      const body = Buffer.from(s);
      expect(new ByteReader(strBuf(body.length, body), 0, body.length + 2, 't').str('s')).toBe(s);
    });
  });
});

describe('utf8', () => {
  it('accepts up to 65535 bytes and counts bytes, not characters', () => {
    expect(utf8('x'.repeat(65535), 'f').length).toBe(65535);
    expect(codeOf(() => utf8('x'.repeat(65536), 'f'))).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(codeOf(() => utf8('é'.repeat(32768), 'path'))).toBe(ErrorCodes.INVALID_ARGUMENT);
  });
});
