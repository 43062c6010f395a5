import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { checkStore } from './check-store';
import { isHashNamed, keys } from './keys';
import type { Manifest } from './manifest';
import { Repository } from './repository';
import { BASE, PS, countingStore, ingest } from './test-helpers';

describe('checkStore', () => {
  let dir: string;
  // A: 32 random pages and 4 zero pages; B: an incremental of A with 8 pages edited a little (delta blobs);
  // C: another process holding A's first 16 pages (all deduplicated).
  const a = randomBytes(32 * PS);
  const b = Buffer.from(a);
  for (let p = 0; p < 8; p++) b.writeUInt32LE(p + 1, p * PS + 100);
  let A: Manifest;
  let B: Manifest;
  let C: Manifest;
  const path = (key: string) => join(dir, ...key.split('/'));
  const fresh = (store = new DirectoryObjectStore(dir)) => new Repository(store).tenant('acme');
  const named = async (prefix: string) => {
    const out: string[] = [];
    for await (const o of new DirectoryObjectStore(dir).list(prefix)) if (isHashNamed(o.key)) out.push(o.key);
    return out;
  };
  /** The pack holding B's delta blobs: the one B's ingest wrote (A's and C's are older). */
  const packOf = async (m: Manifest) => {
    const t = await fresh();
    const r = t.index.locate(Buffer.from(createHash('sha256').update(m === B ? b.subarray(0, PS) : a.subarray(0, PS)).digest()));
    expect(r).toBeGreaterThanOrEqual(0);
    return keys.pack('acme', t.index.packOf(r));
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-check-'));
    const repo = new Repository(new DirectoryObjectStore(dir));
    A = await ingest(repo, 1, [{ start: BASE, data: a, zeroPages: 4 }], 1000);
    B = await ingest(repo, 1, [{ start: BASE, data: b, zeroPages: 4 }], 2000, 'acme', A.snapshotId);
    C = await ingest(repo, 2, [{ start: BASE, data: a.subarray(0, 16 * PS) }], 3000);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('checks every distinct page the snapshots reach once, reading each pack and node pack whole once', async () => {
    expect(B.counts.deltaPages).toBe(8);
    const { store, n } = countingStore(dir);
    const packs = await named(keys.packs('acme'));
    const nodePacks = await named(keys.mapNodes('acme'));
    const t = await fresh(store);
    const getsBefore = n['get packs'] ?? 0;
    const seen: number[] = [];
    const check = await checkStore(t, [A, B, C], (d) => seen.push(d));
    expect(check).toEqual({ objects: packs.length + nodePacks.length, bytes: expect.any(Number), pages: 32 + 8, unchecked: 0, passes: 1, deltasFetched: 0, damaged: [], incomplete: false });
    // Each pack read whole once, and nothing read again: B's delta pages are checked against A's pages as read.
    expect((n['get packs'] ?? 0) - getsBefore).toBe(packs.length);
    expect(n['getRange packs']).toBeUndefined();
    let bytes = 0;
    for (const k of [...packs, ...nodePacks]) bytes += (await readFile(path(k))).length;
    expect(check.bytes).toBe(bytes);
    expect(seen).toEqual(Array.from({ length: packs.length + nodePacks.length }, (_, i) => i + 1));
    // Only the pages the given snapshots reach are counted.
    expect((await checkStore(await fresh(), [C])).pages).toBe(16);
  });

  it('checks delta chains as their packs are read, in further passes what its memory bound did not keep, and fetches again only what no pass checks', async () => {
    // D and E: two more incrementals editing the same 8 pages, so E's delta pages need D's, which need B's.
    const repo = new Repository(new DirectoryObjectStore(dir));
    const d = Buffer.from(b);
    for (let p = 0; p < 8; p++) d.writeUInt32LE(p + 100, p * PS + 200);
    const e = Buffer.from(d);
    for (let p = 0; p < 8; p++) e.writeUInt32LE(p + 200, p * PS + 300);
    const D = await ingest(repo, 1, [{ start: BASE, data: d, zeroPages: 4 }], 4000, 'acme', B.snapshotId);
    const E = await ingest(repo, 1, [{ start: BASE, data: e, zeroPages: 4 }], 5000, 'acme', D.snapshotId);
    expect([D.counts.deltaPages, E.counts.deltaPages]).toEqual([8, 8]);
    // Only E given: the pages it reaches are A's 24 unedited ones and its own 8; D's and B's are bases only.
    const { store, n } = countingStore(dir);
    const kept = await checkStore(await fresh(store), [E]);
    expect(kept).toMatchObject({ pages: 32, deltasFetched: 0, damaged: [], incomplete: false });
    expect(n['getRange packs']).toBeUndefined();
    // With room for four bases, the first pass checks half the chains and a second the rest, reading again
    // only the packs that hold them.
    const before = n['get packs']!;
    const packs = (await named(keys.packs('acme'))).length;
    const bounded = await checkStore(await fresh(store), [A, B, C, D, E], undefined, { keepBytes: 4 * PS });
    expect(bounded).toMatchObject({ pages: 32 + 3 * 8, passes: 2, deltasFetched: 0, damaged: [], incomplete: false });
    expect(packs).toBe(4); // A's, B's, D's and E's: each holds one link of every chain left for the second pass
    expect(n['get packs']! - before).toBe(2 * packs);
    expect(n['getRange packs']).toBeUndefined();
    // With room for none, no pass checks any: every delta page is fetched again with its chain, and checked as well.
    const none = await checkStore(await fresh(store), [A, B, C, D, E], undefined, { keepBytes: 0 });
    expect(none).toMatchObject({ pages: 32 + 3 * 8, passes: 2, deltasFetched: 3 * 8, damaged: [], incomplete: false });
    expect(n['getRange packs']).toBeGreaterThan(0);
    // A damaged base (B's pack) fails the delta pages built on it: the check is incomplete, B's pack named.
    const key = await packOf(B);
    const bytes = await readFile(path(key));
    bytes[10]! ^= 1;
    await writeFile(path(key), bytes);
    const broken = await checkStore(await fresh(), [E]);
    expect([broken.incomplete, broken.deltasFetched, broken.damaged.map((x) => x.details['key'])]).toEqual([true, 8, [key]]);
  });

  it('names a damaged pack a snapshot reaches, and leaves the check incomplete (its snapshots must be read to say which)', async () => {
    for (const m of [A, B]) {
      const key = await packOf(m);
      const bytes = await readFile(path(key));
      bytes[10]! ^= 1; // inside the first blob
      await writeFile(path(key), bytes);
      const check = await checkStore(await fresh(), [A, B, C]);
      expect(check.incomplete).toBe(true);
      // The damaged blob's pages are not counted as checked: they are unchecked, and the sum stays.
      expect(check.unchecked).toBeGreaterThan(0);
      expect(check.pages + check.unchecked).toBe(32 + 8);
      expect(check.damaged.map((e) => [e.code, e.details['key']])).toEqual([[ErrorCodes.OBJECT_CORRUPT, key]]);
      expect(check.damaged[0]!.message).toMatch(/do not hash to its name/);
      bytes[10]! ^= 1;
      await writeFile(path(key), bytes);
    }
  });

  it('names a damaged pack no snapshot reaches, and is complete for the snapshots it was given', async () => {
    const key = await packOf(B);
    const bytes = await readFile(path(key));
    bytes[10]! ^= 1;
    await writeFile(path(key), bytes);
    // C reaches only A's pages: the damage is named, yet every page C has is intact.
    const check = await checkStore(await fresh(), [C]);
    expect([check.incomplete, check.pages, check.damaged.map((e) => e.details['key'])]).toEqual([false, 16, [key]]);
  });

  it('names a blob whose pack is intact but whose page does not hash to what its trailer lists', async () => {
    // A writer that got a page's hash wrong: its pack hashes to its name, its trailer lies.
    const t = await fresh();
    const page = randomBytes(PS);
    const wrong = createHash('sha256').update('not the page').digest();
    expect(t.addPage(wrong, page, 0)).toBe(true);
    await t.flush();
    const check = await checkStore(await fresh(), []);
    expect(check.damaged.map((e) => e.message)).toEqual([expect.stringMatching(new RegExp(`blob @0: its page in slot 0 does not hash to ${wrong.toString('hex')}`))]);
    expect([check.incomplete, check.pages]).toEqual([false, 0]);
  });

  it('is incomplete, naming nothing, when a page a snapshot reaches is in no index file or a map node is gone', async () => {
    for await (const o of new DirectoryObjectStore(dir).list(keys.indexes('acme'))) await unlink(path(o.key));
    const noIndex = await checkStore(await fresh(), [A]);
    expect(noIndex.pages).toBe(0); // its map nodes are found through the index too: none checked
    expect([noIndex.incomplete, noIndex.damaged]).toEqual([true, []]);
    // And with the index there, but a map node pack deleted.
    await rm(dir, { recursive: true, force: true });
    dir = await mkdtemp(join(tmpdir(), 'pv-check-'));
    const repo = new Repository(new DirectoryObjectStore(dir));
    A = await ingest(repo, 1, [{ start: BASE, data: a }], 1000);
    for (const k of await named(keys.mapNodes('acme'))) await unlink(path(k));
    const noNodes = await checkStore(await fresh(), [A]);
    expect([noNodes.incomplete, noNodes.damaged]).toEqual([true, []]);
  });
});
