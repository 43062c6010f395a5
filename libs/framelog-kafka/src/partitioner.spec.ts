import { partitionForKey } from '@pagevault/framelog';
import { randomBytes } from 'node:crypto';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';

describe('partition of a key', () => {
  it("is the partition kafkajs's Java-compatible DefaultPartitioner picks, for any key length and partition count", () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    for (let i = 0; i < 2000; i++) {
      const key = randomBytes(i % 40).toString('hex');
      const partitions = 1 + (i % 13);
      const partitionMetadata = Array.from({ length: partitions }, (_, p) => ({
        partitionId: p,
        leader: 1,
        partitionErrorCode: 0,
        replicas: [1],
        isr: [1],
      }));
      expect(partitionForKey(key, partitions)).toBe(
        kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } }),
      );
    }
  });
});
