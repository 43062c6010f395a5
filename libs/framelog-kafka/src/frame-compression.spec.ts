import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { compress } from 'zstd-napi';
import { FrameCompressor, FrameInflater, SKIP_AFTER_MISS } from './frame-compression';

const MAX = 1 << 20;

/** A frame-like buffer: "PVFR" then text that compresses well. */
function compressible(bytes: number): Buffer {
  const b = Buffer.alloc(bytes);
  b.write('PVFR', 0, 'latin1');
  for (let o = 4; o < bytes; o += 64) b.write(`key:${o % 997} value:${'x'.repeat(40)}`, o, 'latin1');
  return b;
}

describe('frame compression for Kafka records', () => {
  const z = new FrameCompressor();
  const inflater = new FrameInflater(MAX);

  it('compresses a frame that compresses, and inflates it back to the same bytes', () => {
    const f = compressible(MAX);
    const c = z.compress(f)!;
    expect(c.length).toBeLessThan(f.length / 8);
    expect(inflater.inflate(c).equals(f)).toBe(true);
    // The scratch buffer is reused: an earlier result is not overwritten by a later call.
    const g = compressible(4096);
    const cg = z.compress(g)!;
    expect(inflater.inflate(c).equals(f)).toBe(true);
    expect(inflater.inflate(cg).equals(g)).toBe(true);
  });

  it('sends as they are frames that do not shrink to a third, and does not try the next few', () => {
    const c = new FrameCompressor();
    // Half random, half compressible: about half its size, not a third.
    const half = Buffer.concat([randomBytes(64 * 1024), compressible(64 * 1024)]);
    expect(c.compress(half)).toBeUndefined();
    for (let i = 0; i < SKIP_AFTER_MISS; i++) expect(c.compress(compressible(8192))).toBeUndefined();
    expect(c.compress(compressible(8192))).toBeDefined();
    expect(c.compress(randomBytes(8192))).toBeUndefined();
    expect(c.counts).toEqual({ compressed: 1, plain: 2, skipped: SKIP_AFTER_MISS });
  });

  it('hands on untouched what is not one zstd frame it may inflate: plain frames, damage, bombs', () => {
    const f = compressible(64 * 1024);
    const c = z.compress(f)!;
    const flipped = Buffer.from(c);
    flipped[c.length >> 1] ^= 0xff;
    const cases: [string, Buffer][] = [
      ['a plain frame', f],
      ['an empty value', Buffer.alloc(0)],
      ['a truncated zstd frame', c.subarray(0, c.length - 5)],
      ['a zstd frame with a flipped byte', flipped],
      ['two zstd frames back to back', Buffer.concat([c, c])],
      ['a zstd frame larger than the largest frame (a bomb)', compress(Buffer.alloc(MAX + 1))],
      ['a zstd frame that does not state its size', compress(f, { contentSizeFlag: false })],
    ];
    for (const [what, v] of cases) expect(inflater.inflate(v), what).toBe(v);
    // zstd's checksum is what tells a flipped byte in the data: each compressed frame carries one.
    expect(c[4]! & 0x04).toBe(0x04);
  });
});
