import { hash, randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { PageHasher, pageHashing } from './page-hasher';

const PS = 4096;
const sha = (b: Uint8Array) => hash('sha256', b, 'hex');

describe('PageHasher', () => {
  const pool = new PageHasher(2, 256);
  afterAll(() => pool.close());
  const data = randomBytes(600 * PS);
  const expected = (pages: number[]) => pages.map((p) => sha(data.subarray(p * PS, (p + 1) * PS)));
  const hexes = (out: Buffer, n: number) => Array.from({ length: n }, (_, k) => out.subarray(k * 32, k * 32 + 32).toString('hex'));

  it('hashes every page, whatever the count against the helpers and their share limit', () => {
    for (const n of [1, 31, 32, 33, 255, 256, 600]) {
      const out = Buffer.alloc(n * 32);
      pool.hash(data, n, PS, out);
      expect(hexes(out, n), `n=${n}`).toEqual(expected(Array.from({ length: n }, (_, i) => i)));
    }
  });

  it('hashes only the pages asked for, in the order asked', () => {
    const idx = Int32Array.from({ length: 200 }, (_, k) => (k * 7) % 600);
    const out = Buffer.alloc(200 * 32);
    pool.hashAt(data, PS, idx, 200, out);
    expect(hexes(out, 200)).toEqual(expected([...idx]));
  });

  it('agrees with one crypto.hash a page, repeatedly (shared blocks reused between calls)', () => {
    const a = Buffer.alloc(300 * 32);
    for (let r = 0; r < 20; r++) {
      const d = randomBytes(300 * PS);
      pool.hash(d, 300, PS, a);
      expect(hexes(a, 300)).toEqual(Array.from({ length: 300 }, (_, i) => sha(d.subarray(i * PS, (i + 1) * PS))));
    }
  });

  it('hashes on the calling thread alone with no helpers, and for another page size', () => {
    const solo = new PageHasher(0);
    const out = Buffer.alloc(64 * 32);
    solo.hash(data, 64, PS, out);
    expect(hexes(out, 64)).toEqual(expected(Array.from({ length: 64 }, (_, i) => i)));
    const big = Buffer.alloc(40 * 32);
    pool.hash(data, 40, 2 * PS, big);
    expect(hexes(big, 40)).toEqual(Array.from({ length: 40 }, (_, i) => sha(data.subarray(i * 2 * PS, (i + 1) * 2 * PS))));
  });

  it('stays correct when the helpers are slow or not running: the caller takes their unclaimed pages', () => {
    const slow = new PageHasher(1, 256);
    try {
      for (let r = 0; r < 30; r++) {
        const n = 40 + ((r * 37) % 200);
        const d = randomBytes(n * PS);
        const out = Buffer.alloc(n * 32);
        slow.hash(d, n, PS, out);
        expect(hexes(out, n), `round ${r}`).toEqual(Array.from({ length: n }, (_, i) => sha(d.subarray(i * PS, (i + 1) * PS))));
        // Keep the helper's core busy part of the time, so some calls find it mid-chunk and others asleep.
        if (r % 3 === 0) {
          const t = Date.now();
          while (Date.now() - t < 5);
        }
      }
    } finally {
      void slow.close();
    }
  });

  it('settles only once every helper it started has loaded its libraries (a process may then exit)', async () => {
    const h = new PageHasher(2);
    const pages = randomBytes(64 * 4096);
    const out = Buffer.alloc(64 * 32);
    h.hash(pages, 64, 4096, out); // starts the helpers; the caller hashes what they have not claimed
    await h.settle();
    expect(h.starting).toBe(0);
    await h.close();
  });

  it('hashes natively: scripts/build-native.cjs (npm ci) built the batch library and it loaded', () => {
    // PV_NATIVE_HASH=0 is the one way to run without it; a missing compiler fails here, not silently.
    const want = process.env['PV_NATIVE_HASH'] === '0' ? 'node:crypto' : 'native';
    expect(pageHashing(), 'libs/hashing/native/build/libpvsha256.so: run node libs/hashing/scripts/build-native.cjs').toBe(want);
    expect(pool.native).toBe(want === 'native');
  });

  it('reads views at any offset of their buffer, native and node:crypto alike, helpers included', () => {
    const backing = randomBytes(700 * PS + 123);
    const view = backing.subarray(123 + 50 * PS, 123 + 650 * PS); // not page-aligned, not at the buffer start
    const idxAll = Int32Array.from({ length: 400 }, (_, k) => (k * 13) % 600);
    const idx = idxAll.subarray(100); // an index view at an offset too
    const viaCrypto = new PageHasher(1, 512, PS, false);
    try {
      for (const h of [pool, viaCrypto]) {
        const out = Buffer.alloc(600 * 32);
        h.hash(view, 600, PS, out);
        expect(hexes(out, 600)).toEqual(Array.from({ length: 600 }, (_, i) => sha(view.subarray(i * PS, (i + 1) * PS))));
        const some = Buffer.alloc(300 * 32);
        h.hashAt(view, PS, idx, 300, some);
        expect(hexes(some, 300)).toEqual([...idx].map((p) => sha(view.subarray(p * PS, (p + 1) * PS))));
      }
      expect(viaCrypto.native).toBe(false);
    } finally {
      void viaCrypto.close();
    }
  });
});
