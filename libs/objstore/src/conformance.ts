import { randomBytes } from 'node:crypto';
import { ErrorCodes } from '@pagevault/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  collect,
  deleteAll,
  expectPvError,
  forEachLimited,
  patterned,
  uniqueNamespace,
} from './conformance-helpers.js';
import type { ObjectStore } from './object-store.js';

export interface ConformanceFixture {
  store: ObjectStore;
  cleanup(): Promise<void>;
}

/**
 * The one test suite every ObjectStore adapter must pass (restic's backend test suite). All keys
 * live under a fresh namespace, deleted again at the end, so the suite can share a real bucket.
 */
export function describeObjectStoreConformance(name: string, make: () => Promise<ConformanceFixture>): void {
  describe(`ObjectStore conformance: ${name}`, () => {
    let fixture: ConformanceFixture | undefined;
    let store: ObjectStore;
    const ns = uniqueNamespace();

    beforeAll(async () => {
      fixture = await make();
      store = fixture.store;
    });
    afterAll(async () => {
      if (!fixture) return;
      try {
        await deleteAll(store, ns);
        expect(await collect(store.list(ns)), 'objects left behind').toEqual([]);
      } finally {
        await fixture.cleanup();
      }
    });

    it('returns what was put: bytes, sizes from 0 to 9 MiB', async () => {
      for (const size of [0, 1, 4096, 9 * 1024 * 1024]) {
        const body = randomBytes(size);
        await store.put(`${ns}roundtrip/${size}`, body);
        const got = await store.get(`${ns}roundtrip/${size}`);
        expect(Buffer.isBuffer(got)).toBe(true);
        expect(got.length).toBe(size);
        expect(got.equals(body)).toBe(true);
        expect(await store.head(`${ns}roundtrip/${size}`)).toEqual({ key: `${ns}roundtrip/${size}`, size });
      }
    });

    it('an overwrite replaces the whole object, never a mix of old and new', async () => {
      const key = `${ns}overwrite/x`;
      await store.put(key, patterned(1000, 1));
      await store.put(key, patterned(10, 2));
      expect((await store.get(key)).equals(patterned(10, 2))).toBe(true);
      expect(await store.head(key)).toEqual({ key, size: 10 });
    });

    it('putting the same content twice is idempotent', async () => {
      const key = `${ns}idempotent/x`;
      await store.put(key, patterned(300));
      await store.put(key, patterned(300));
      expect((await store.get(key)).equals(patterned(300))).toBe(true);
    });

    it('getRange returns exactly [offset, offset+length) at the start, middle and end', async () => {
      const key = `${ns}range/x`;
      const body = patterned(100_000, 3);
      await store.put(key, body);
      for (const [offset, length] of [
        [0, 10],
        [0, 100_000],
        [4095, 8193],
        [99_990, 10],
        [99_999, 1],
        [100_000, 0],
      ]) {
        const got = await store.getRange(key, offset, length);
        expect(got.equals(body.subarray(offset, offset + length)), `range ${offset}+${length}`).toBe(true);
      }
    });

    it('getRange into a caller buffer gives the same bytes, in it, and falls back when it is too small', async () => {
      const key = `${ns}range/into`;
      const body = patterned(100_000, 5);
      await store.put(key, body);
      const into = Buffer.alloc(70_000, 0xee);
      for (const [offset, length] of [[0, 70_000], [4095, 8193], [99_000, 1000]] as const) {
        const got = await store.getRange(key, offset, length, into);
        expect(got.equals(body.subarray(offset, offset + length)), `range ${offset}+${length}`).toBe(true);
        expect(got.buffer === into.buffer, 'a view of the caller buffer').toBe(true);
      }
      const big = await store.getRange(key, 0, 90_000, into); // longer than into: a buffer of its own
      expect(big.equals(body.subarray(0, 90_000))).toBe(true);
      await expectPvError(store.getRange(key, 99_990, 11, into), ErrorCodes.OBJECT_CORRUPT, key);
    });

    it('getRange past the end of the object is PV_OBJECT_CORRUPT naming the key', async () => {
      const key = `${ns}range/short`;
      await store.put(key, patterned(100));
      await expectPvError(store.getRange(key, 90, 11), ErrorCodes.OBJECT_CORRUPT, key);
      await expectPvError(store.getRange(key, 100, 1), ErrorCodes.OBJECT_CORRUPT, key);
      await expectPvError(store.getRange(key, 5000, 10), ErrorCodes.OBJECT_CORRUPT, key);
      await expectPvError(store.getRange(key, 101, 0), ErrorCodes.OBJECT_CORRUPT, key);
    });

    it('a missing key: head is undefined, get and getRange are PV_OBJECT_NOT_FOUND naming the key', async () => {
      const key = `${ns}missing/nothing-here`;
      expect(await store.head(key)).toBeUndefined();
      await expectPvError(store.get(key), ErrorCodes.OBJECT_NOT_FOUND, key);
      await expectPvError(store.getRange(key, 0, 1), ErrorCodes.OBJECT_NOT_FOUND, key);
      await expectPvError(store.getRange(key, 0, 0), ErrorCodes.OBJECT_NOT_FOUND, key);
      await store.put(`${ns}missing/dir/x`, patterned(3));
      expect(await store.head(`${ns}missing/dir`), 'a key prefix is not an object').toBeUndefined();
      await expectPvError(store.get(`${ns}missing/dir`), ErrorCodes.OBJECT_NOT_FOUND, `${ns}missing/dir`);
    });

    it('rejects malformed keys with PV_INVALID_ARGUMENT before touching the store', async () => {
      for (const bad of ['', '/abs', `${ns}a//b`, `${ns}../x`, `${ns}sp ace`, `${ns}q?x`, `${ns}trailing/`]) {
        await expectPvError(store.put(bad, new Uint8Array(1)), ErrorCodes.INVALID_ARGUMENT);
        await expectPvError(store.get(bad), ErrorCodes.INVALID_ARGUMENT);
      }
    });

    it('list yields exactly the keys under a string prefix, in byte order, with sizes', async () => {
      const keys = ['p/a', 'p/b/c', 'p-x', 'pa', 'p.d', 'q'];
      await forEachLimited(keys, 8, (k) => store.put(`${ns}list/${k}`, patterned(k.length)));
      const listed = async (prefix: string) =>
        (await collect(store.list(`${ns}list/${prefix}`))).map((i) => i.key);
      expect(await listed('p/')).toEqual([`${ns}list/p/a`, `${ns}list/p/b/c`]);
      // '-' (0x2d) < '.' (0x2e) < '/' (0x2f) < 'a': a directory walk must not put "p/..." first.
      expect(await listed('p')).toEqual(['p-x', 'p.d', 'p/a', 'p/b/c', 'pa'].map((k) => `${ns}list/${k}`));
      expect(await listed('p/b')).toEqual([`${ns}list/p/b/c`]);
      expect(await listed('nothing')).toEqual([]);
      const sizes = (await collect(store.list(`${ns}list/`))).map(({ key, size }) => ({ key, size }));
      expect(sizes).toEqual([...keys].sort().map((k) => ({ key: `${ns}list/${k}`, size: k.length })));
    });

    it('list pages past 1000 keys (S3 returns at most 1000 per request)', async () => {
      const keys = Array.from({ length: 1100 }, (_, i) => `${ns}many/${i.toString().padStart(5, '0')}`);
      await forEachLimited(keys, 32, (k) => store.put(k, new Uint8Array(1)));
      const listed = await collect(store.list(`${ns}many/`));
      expect(listed.map((i) => i.key)).toEqual(keys);
      expect(listed.every((i) => i.size === 1)).toBe(true);
    });

    it('delete removes the object; deleting a missing key is not an error', async () => {
      const key = `${ns}delete/x`;
      await store.put(key, patterned(10));
      await store.delete(key);
      expect(await store.head(key)).toBeUndefined();
      await expectPvError(store.get(key), ErrorCodes.OBJECT_NOT_FOUND, key);
      await store.delete(key);
      expect(await collect(store.list(`${ns}delete/`))).toEqual([]);
    });

    it('concurrent puts of one key leave one whole object, and readers see all or nothing', async () => {
      const key = `${ns}race/x`;
      const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(256 * 1024, i + 1));
      const reads: Promise<Buffer | undefined>[] = [];
      await Promise.all(
        bodies.map(async (b) => {
          reads.push(store.get(key).catch(() => undefined));
          await store.put(key, b);
        }),
      );
      const isWhole = (got: Buffer) => bodies.some((b) => b.equals(got));
      expect(isWhole(await store.get(key))).toBe(true);
      for (const got of await Promise.all(reads)) if (got) expect(isWhole(got)).toBe(true);
      expect(await collect(store.list(`${ns}race/`))).toMatchObject([{ key, size: 256 * 1024 }]);
    });

    it('list reports when each object was written, by a clock that agrees with ours', async () => {
      // S3 keeps whole seconds; a server's clock may be a little off ours: a minute either way is sane.
      const slack = 60_000;
      const before = Date.now();
      await store.put(`${ns}mtime/a`, patterned(5));
      await store.put(`${ns}mtime/b`, patterned(6));
      const after = Date.now();
      const listed = await collect(store.list(`${ns}mtime/`));
      expect(listed.map((i) => i.key)).toEqual([`${ns}mtime/a`, `${ns}mtime/b`]);
      for (const i of listed) {
        expect(Number.isInteger(i.modifiedMs), `${i.key} has an integer modifiedMs`).toBe(true);
        expect(i.modifiedMs!).toBeGreaterThanOrEqual(before - slack);
        expect(i.modifiedMs!).toBeLessThanOrEqual(after + slack);
      }
      // Written after a: never earlier than a by the same clock (equal within S3's one-second grain).
      expect(listed[1]!.modifiedMs!).toBeGreaterThanOrEqual(listed[0]!.modifiedMs!);
    });
  });
}
