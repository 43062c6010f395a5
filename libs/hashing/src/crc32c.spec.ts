import { crc32c as rsCrc32c } from '@node-rs/crc32';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cImplementation, frameCrc32c, loadNativeCrc32c } from './crc32c';

// The reference: bit by bit from the definition (reflected polynomial 0x82f63b78), nothing shared with
// either implementation under test.
function reference(data: Uint8Array, initial = 0): number {
  let c = ~initial >>> 0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return ~c >>> 0;
}

describe('crc32c', () => {
  const native = loadNativeCrc32c();

  it('is native here: scripts/build-native.cjs (npm ci) built it and this CPU has SSE4.2', () => {
    const want = process.env['PV_NATIVE_HASH'] === '0' ? '@node-rs/crc32' : 'native';
    expect(crc32cImplementation, 'libs/hashing/native/build/libpvpagehash.so: run node libs/hashing/scripts/build-native.cjs').toBe(want);
    expect(native !== undefined).toBe(want === 'native');
  });

  it('gives the standard check value and agrees with the definition on every length and alignment', () => {
    expect(crc32c(Buffer.from('123456789'))).toBe(0xe3069283);
    const data = randomBytes(3 * 8192 * 2 + 3 * 256 * 3 + 21);
    // Lengths around each path's edges: byte heads and tails, 8-byte steps, 3 × 256 and 3 × 8192 blocks.
    const lengths = [0, 1, 7, 8, 9, 767, 768, 769, 1543, 24575, 24576, 24577, 24576 + 768 + 5, data.length - 8];
    for (const len of lengths) {
      for (const at of [0, 1, 3, 7]) {
        const s = data.subarray(at, at + len);
        const want = reference(s);
        expect(crc32c(s), `${len} bytes at +${at}`).toBe(want);
        expect(rsCrc32c(s) >>> 0).toBe(want);
        if (native) expect(native.crc32c(s)).toBe(want);
      }
    }
  });

  it('chains: the CRC of a whole equals the CRC of its second part continued from the first', () => {
    const data = randomBytes(100_000);
    const whole = reference(data);
    for (const cut of [0, 1, 4096, 24577, 99_999, 100_000]) {
      expect(crc32c(data.subarray(cut), crc32c(data.subarray(0, cut)))).toBe(whole);
    }
  });

  it('computes a frame CRC over the header up to its CRC field and then the body, in one call', () => {
    const frame = randomBytes(1 << 20);
    const want = reference(frame.subarray(36), reference(frame.subarray(0, 32)));
    expect(frameCrc32c(frame, 32, 36)).toBe(want);
    expect(frameCrc32c(frame.subarray(0, 36), 32, 36)).toBe(reference(frame.subarray(0, 32)));
    if (native) expect(() => native.frame(frame.subarray(0, 20), 32, 36)).toThrow(RangeError);
  });

  it('finds a single flipped bit anywhere', () => {
    const data = randomBytes(3 * 8192 + 100);
    const base = crc32c(data);
    for (const at of [0, 5, 8191, 8192, 16_384, 24_575, data.length - 1]) {
      data[at] ^= 0x10;
      expect(crc32c(data), `bit at ${at}`).not.toBe(base);
      data[at] ^= 0x10;
    }
    expect(crc32c(data)).toBe(base);
  });

  it('is not loaded from a library that is not there', () => {
    expect(loadNativeCrc32c('/nonexistent/libpvpagehash.so')).toBeUndefined();
  });
});
