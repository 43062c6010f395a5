import { describe, expect, it } from 'vitest';
import { idFromHex, idToHex, isZeroId, newSnapshotId } from './ids';

describe('snapshot ids', () => {
  it('are 16 random bytes', () => {
    const a = newSnapshotId();
    expect(a.length).toBe(16);
    expect(idToHex(a)).not.toBe(idToHex(newSnapshotId()));
  });

  it('print as 32 lowercase hex digits, also from a view into a larger buffer', () => {
    const big = Buffer.from('ff00112233445566778899aabbccddeeffee', 'hex');
    expect(idToHex(big.subarray(1, 17))).toBe('00112233445566778899aabbccddeeff');
    expect(idToHex(idFromHex('00112233445566778899aabbccddeeff'))).toBe('00112233445566778899aabbccddeeff');
  });

  it.each(['', '0011', '00112233445566778899AABBCCDDEEFF', '00112233445566778899aabbccddeeff00', 'zz112233445566778899aabbccddeeff'])(
    'refuses %j',
    (hex) => expect(() => idFromHex(hex)).toThrow(RangeError),
  );

  it('treat all zeros as "no id"', () => {
    expect(isZeroId(new Uint8Array(16))).toBe(true);
    expect(isZeroId(idFromHex('00000000000000000000000000000001'))).toBe(false);
  });
});
