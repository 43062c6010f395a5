import { describe, expect, it } from 'vitest';
import { BlobRing } from './blob-ring';

const PS = 16;

describe('BlobRing', () => {
  it('never hands out memory a cached blob still holds, whatever the region sizes and wraps', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    const ring = new BlobRing(PS, 100 * PS);
    const kept = new Map<number, number>(); // key -> fill byte
    let key = 0;
    for (let round = 0; round < 3000; round++) {
      const pages = 1 + rand(round % 50 === 0 ? 140 : 30); // now and then larger than the ring
      const r = ring.region(pages);
      expect(r.raw.length).toBe(pages * PS);
      const fill = round & 0xff;
      r.raw.fill(fill);
      r.hashes.fill(fill);
      if (!r.inRing) continue;
      // Carve it into blobs and cache some, as the fetcher does.
      for (let p = 0; p < pages; ) {
        const n = Math.min(pages - p, 1 + rand(16));
        if (rand(3) > 0) {
          ring.keep(++key, r.first + p, n);
          kept.set(key, fill * 1000 + n);
        }
        p += n;
      }
      for (const [k, v] of kept) {
        const at = ring.get(k);
        if (at < 0) {
          kept.delete(k); // evicted: fine, as long as what is still cached is intact
          continue;
        }
        const [f, n] = [Math.floor(v / 1000), v % 1000];
        const raw = ring.raw.subarray(at * PS, (at + n) * PS);
        const sums = ring.hashes.subarray(at * 32, (at + n) * 32);
        expect(raw.every((x) => x === f) && sums.every((x) => x === f), `blob ${k} overwritten in round ${round}`).toBe(true);
      }
    }
    expect(key).toBeGreaterThan(1000);
  });

  it('keeps blobs while the ring has room, evicting the oldest first', () => {
    const ring = new BlobRing(PS, 10 * PS);
    for (let k = 0; k < 5; k++) {
      const r = ring.region(2);
      ring.keep(k, r.first, 2);
    }
    expect([0, 1, 2, 3, 4].map((k) => ring.get(k))).toEqual([0, 2, 4, 6, 8]);
    const r = ring.region(3); // wraps: evicts 0 and 1
    ring.keep(9, r.first, 3);
    expect([0, 1, 2, 3, 4, 9].map((k) => ring.get(k))).toEqual([-1, -1, 4, 6, 8, 0]);
  });
});
