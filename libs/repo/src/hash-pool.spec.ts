import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { HashPool, hashPagesSync } from './hash-pool';

describe('HashPool', () => {
  const pool = new HashPool(2);
  afterAll(() => pool.close());

  it('gives the same hashes as hashing on the calling thread, for any chunk size', async () => {
    for (const n of [1, 7, 8, 9, 254, 1000]) {
      const data = randomBytes(n * 4096);
      const a = Buffer.alloc(n * 32);
      const b = Buffer.alloc(n * 32);
      hashPagesSync(data, n, 4096, a);
      await pool.hashPages(data, n, 4096, b);
      expect(b.equals(a)).toBe(true);
    }
  });

  it('hashes a view into a larger buffer (a frame) at its offset', async () => {
    const frame = randomBytes(44 + 16 * 4096);
    const view = frame.subarray(44);
    const a = Buffer.alloc(16 * 32);
    const b = Buffer.alloc(16 * 32);
    hashPagesSync(view, 16, 4096, a);
    await pool.hashPages(view, 16, 4096, b);
    expect(b.equals(a)).toBe(true);
  });
});
