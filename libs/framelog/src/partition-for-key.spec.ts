import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from './partition-for-key';

describe('partitionForKey', () => {
  it("hashes with Kafka's murmur2 (values of the Java client and kafkajs)", () => {
    const vectors: Array<[string, number]> = [
      ['', 275646681],
      ['a', -1563381124],
      ['ab', 316155434],
      ['abc', 479470107],
      ['abcd', -1323649548],
      ['21', -973932308], // Kafka's own UtilsTest vector
      ['0123456789abcdef0123456789abcdef', 81657833],
    ];
    for (const [key, hash] of vectors) expect(murmur2(Buffer.from(key))).toBe(hash);
  });

  it('maps a key to (murmur2 & 0x7fffffff) % partitions, always in range', () => {
    expect(partitionForKey('a', 7)).toBe((-1563381124 & 0x7fffffff) % 7);
    for (let n = 1; n <= 16; n++) {
      for (let i = 0; i < 200; i++) {
        const p = partitionForKey(`k${i}`, n);
        expect(p >= 0 && p < n && Number.isInteger(p)).toBe(true);
      }
    }
  });
});
