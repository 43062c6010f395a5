import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { forgetSnapshots } from './forget';
import { encodeIndexFile, readIndexFile } from './index-file';
import { keys } from './keys';
import type { Manifest } from './manifest';
import { MAX_DELTA_DEPTH, PackBuilder, deltaDictionary, deltaHeader, inflateBlob, readPackTrailer } from './pack';
import { PageFetcher } from './page-fetcher';
import { readPageMap } from './page-map';
import { prune } from './prune';
import { RecentPages } from './recent-pages';
import { Repository } from './repository';
import { BASE, PS, ingest, readBack } from './test-helpers';

const sha = (b: Buffer) => createHash('sha256').update(b).digest();
/** `page` with a few bytes changed at a place that depends on `seed`. */
const touch = (page: Buffer, seed: number) => {
  const p = Buffer.from(page);
  p.writeUInt32LE(seed * 2654435761 >>> 0, (seed * 88) % (PS - 4));
  return p;
};

describe('delta blobs', () => {
  it('hold one page each, inflate with its base, even a base that starts with zstd’s dictionary magic, and are far smaller', () => {
    const bases = Array.from({ length: 20 }, () => randomBytes(PS));
    bases[3]!.writeUInt32LE(0xec30a437, 0); // ZSTD_MAGIC_DICTIONARY: must not be read as a trained dictionary
    const pages = bases.map((b, i) => touch(b, i));
    const plain = new PackBuilder(PS, 1);
    const delta = new PackBuilder(PS, 1);
    pages.forEach((p, i) => {
      plain.add(sha(p), p, 0);
      delta.add(sha(p), p, 0, sha(bases[i]!), 0, bases[i]!, 0, i % 2); // bases in blobs of depth 0 and 1
    });
    const sp = plain.seal()!;
    const sd = delta.seal()!;
    expect(sd.bytes.length).toBeLessThan(sp.bytes.length / 20);
    const entries = readPackTrailer(sd.bytes, 'k');
    expect(entries.map((e) => [e.blobPages, e.slot, e.depth])).toEqual(pages.map((_, i) => [1, 0, 1 + (i % 2)]));
    expect(sd.bases.map((b) => b.hashes)).toEqual(bases.map(sha));
    entries.forEach((e, i) => {
      const z = sd.bytes.subarray(e.blobOffset, e.blobOffset + e.blobLength);
      const h = deltaHeader(z, 'k')!;
      expect(h).toMatchObject({ depth: 1 + (i % 2), bases: 1 });
      const { dict, pages: at } = deltaDictionary(1, PS);
      bases[i]!.copy(at);
      expect(inflateBlob(z, 1, PS, 'k', dict).equals(pages[i]!)).toBe(true);
      expect(() => inflateBlob(z, 1, PS, 'pack k')).toThrow(expect.objectContaining({ code: ErrorCodes.OBJECT_CORRUPT }));
    });
  });

  it('leave pages without a base in shared plain blobs, and ignore a base at the end of a longest chain', () => {
    const base = randomBytes(PS);
    const b = new PackBuilder(PS, 1);
    for (let i = 0; i < 4; i++) b.add(sha(touch(base, i)), touch(base, i), 0); // no base
    b.add(sha(touch(base, 9)), touch(base, 9), 0, sha(base), 0, base, 0, MAX_DELTA_DEPTH); // too deep
    b.add(sha(touch(base, 7)), touch(base, 7), 0, sha(base), 0, base, 0, 0);
    const s = b.seal()!;
    expect(s.bases).toEqual([{ blobOffset: 0, hashes: sha(base) }]);
    const entries = readPackTrailer(s.bytes, 'k');
    expect(entries.map((e) => [e.blobOffset === 0, e.blobPages, e.depth])).toEqual([[true, 1, 1], ...Array.from({ length: 5 }, () => [false, 5, 0])]);
  });

  it('index files carry the bases (version 2) and stay version 1 without them; a cut bases section is corrupt', () => {
    const base = randomBytes(PS);
    const b = new PackBuilder(PS, 1);
    b.add(sha(touch(base, 1)), touch(base, 1), 0, sha(base), 0, base, 0, 0);
    const s = b.seal()!;
    const v2 = encodeIndexFile([s]).bytes;
    expect(v2.readUInt32LE(4)).toBe(2);
    const got: [string, number, string][] = [];
    const depths: number[] = [];
    readIndexFile(v2, 'k', (_h, _at, loc) => depths.push(loc.depth!), (pack, off, buf, at, n) => got.push([pack, off, buf.toString('hex', at, at + n * 32)]));
    expect(got).toEqual([[s.sha, 0, sha(base).toString('hex')]]);
    expect(depths).toEqual([1]);
    expect(encodeIndexFile([{ sha: s.sha, entries: s.entries }]).bytes.readUInt32LE(4)).toBe(1);
    expect(() => readIndexFile(v2.subarray(0, v2.length - 1), 'k', () => undefined)).toThrow(expect.objectContaining({ code: ErrorCodes.OBJECT_CORRUPT }));
  });

  it('a delta blob that names itself as its base is corrupt, not an endless chain', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pv-delta-'));
    try {
      const store = new DirectoryObjectStore(dir);
      const page = randomBytes(PS);
      const b = new PackBuilder(PS, 1);
      b.add(sha(page), page, 0, sha(page), 0, page, 0, 0); // hostile: its own base
      const s = b.seal()!;
      await store.put(keys.pack('acme', s.sha), s.bytes);
      const idx = encodeIndexFile([s]);
      await store.put(keys.index('acme', idx.sha), idx.bytes);
      const t = await new Repository(store).tenant('acme');
      const f = new PageFetcher(t, PS);
      await expect(f.fetch(sha(page), [0], 1, Buffer.alloc(PS), () => 'page')).rejects.toMatchObject({ code: ErrorCodes.OBJECT_CORRUPT });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('incremental snapshots stored as deltas', () => {
  let dir: string;
  let store: DirectoryObjectStore;
  let repo: Repository;
  const N = 64;
  /** State k of a 64-page region: every page changed in a few bytes at every state. */
  const states: Buffer[] = [randomBytes(N * PS)];
  for (let k = 1; k <= MAX_DELTA_DEPTH + 3; k++) {
    const prev = states[k - 1]!;
    states.push(Buffer.concat(Array.from({ length: N }, (_, i) => touch(prev.subarray(i * PS, (i + 1) * PS), k * N + i))));
  }
  const mem = (k: number) => [{ start: BASE, data: states[k]! }];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-delta-'));
    store = new DirectoryObjectStore(dir);
    repo = new Repository(store);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const series = async (n: number) => {
    const out: Manifest[] = [];
    for (let k = 0; k < n; k++) out.push(await ingest(repo, 1, mem(k), 1000 + k, 'acme', out[k - 1]?.snapshotId));
    return out;
  };

  it.each([
    ['kept from storing them', () => repo],
    ['fetched from their packs', () => new Repository(store, { recentPagesBytes: 0 })],
  ])('store each changed page against the parent’s (bases %s), chains at most MAX_DELTA_DEPTH long, and restore byte for byte', async (_how, compactor) => {
    const ms: Manifest[] = [];
    for (let k = 0; k < MAX_DELTA_DEPTH + 3; k++) ms.push(await ingest(compactor(), 1, mem(k), 1000 + k, 'acme', ms[k - 1]?.snapshotId));
    // A chain restarts with whole pages once its bases are MAX_DELTA_DEPTH deep.
    expect(ms.map((m) => m.counts.deltaPages ?? 0)).toEqual(ms.map((_, k) => (k === 0 || k === MAX_DELTA_DEPTH + 1 ? 0 : N)));
    for (const m of ms) expect(m.counts.newPages).toBe(N);
    expect(ms[1]!.counts.newBytes).toBeLessThan(ms[0]!.counts.newBytes / 10);
    const fresh = await new Repository(new DirectoryObjectStore(dir)).tenant('acme');
    let deepest = 0;
    for (const h of fresh.index.hashes()) deepest = Math.max(deepest, fresh.index.depthOf(fresh.index.locate(h)));
    expect(deepest).toBe(MAX_DELTA_DEPTH);
    for (let k = 0; k < ms.length; k++) expect((await readBack(fresh, ms[k]!))[0]!.equals(states[k]!), `state ${k}`).toBe(true);
  });

  it('prune keeps the bases a live snapshot’s deltas need, down the chain, and repacks them whole', async () => {
    // State 0 also has a region no later state has: dead once state 0 is forgotten, beside live bases.
    const gone = { start: BASE + 0x100_0000, data: randomBytes(N * PS) };
    const ms = [await ingest(repo, 1, [...mem(0), gone], 1000)];
    for (let k = 1; k < 4; k++) ms.push(await ingest(repo, 1, mem(k), 1000 + k, 'acme', ms[k - 1]!.snapshotId));
    await forgetSnapshots(await repo.tenant('acme'), ms.slice(0, 3).map((m) => m.snapshotId));
    const r = await prune(store, 'acme', { graceMs: 0, repackBelow: 1 });
    expect(r.snapshots).toBe(1);
    // Every page of states 0-2 is a base on the chain of state 3: only the other region goes, and the
    // bases in its pack move to a new one.
    expect(r.livePages).toBe(4 * N);
    expect(r.packs.repacked).toBe(1);
    expect(r.pagesRepacked).toBe(N);
    const fresh = await new Repository(new DirectoryObjectStore(dir)).tenant('acme');
    expect((await readBack(fresh, ms[3]!))[0]!.equals(states[3]!)).toBe(true);
    // A new snapshot on top of it still finds its bases and restores.
    const next = await ingest(new Repository(new DirectoryObjectStore(dir)), 1, mem(4), 5000, 'acme', ms[3]!.snapshotId);
    expect(next.counts.deltaPages).toBe(N);
    expect((await readBack(await new Repository(new DirectoryObjectStore(dir)).tenant('acme'), next))[0]!.equals(states[4]!)).toBe(true);
  });

  it('restore through one reused read buffer: ranges with delta blobs keep their bytes until their bases are in', async () => {
    const ms = await series(3);
    const t = await new Repository(new DirectoryObjectStore(dir)).tenant('acme');
    const list = await readPageMap(ms[2]!.vmas[0]!.map!, PS, t.loadNode);
    const hashAt = Array.from({ length: N }, (_, i) => list.hashAt[0]! + i * 32);
    const out = Buffer.alloc(N * PS);
    // One GET in flight, ranges of a blob or two: every small GET lands in the buffer the one before used.
    const f = new PageFetcher(t, PS, { maxInFlight: 1, gapBytes: 0, maxRangeBytes: 256 });
    await f.fetch(list.hashes, hashAt, N, out, (i) => `page ${i}`);
    expect(out.equals(states[2]!)).toBe(true);
    expect(f.stats.deltaBlobs).toBeGreaterThanOrEqual(N);
  });

  it('stop in a snapshot whose sampled delta blobs save less than a quarter (pages rewritten, not edited)', async () => {
    const big = 4096;
    const before = randomBytes(big * PS);
    const [m0] = [await ingest(repo, 1, [{ start: BASE, data: before }], 1000)];
    const rewritten = await ingest(repo, 1, [{ start: BASE, data: randomBytes(big * PS) }], 2000, 'acme', m0!.snapshotId);
    expect(rewritten.counts.newPages).toBe(big);
    // Deltas are tried until the sample decides (a chunk or two), then the rest is stored whole.
    expect(rewritten.counts.deltaPages ?? 0).toBeGreaterThan(0);
    expect(rewritten.counts.deltaPages ?? 0).toBeLessThan(big / 4);
    const edited = await ingest(repo, 1, [{ start: BASE, data: Buffer.concat(Array.from({ length: big }, (_, i) => touch(before.subarray(i * PS, (i + 1) * PS), i))) }], 3000, 'acme', m0!.snapshotId);
    // Deltas again, bar a base or two its four-way cache let go (those pages are stored whole, not waited for).
    expect(edited.counts.deltaPages).toBeGreaterThan(big * 0.98);
  });

  it('sample again after a region of rewritten pages: edited pages further on are deltas again', async () => {
    const rewritten = 512;
    const edited = 12_288;
    const before = randomBytes((rewritten + edited) * PS);
    const m0 = await ingest(repo, 1, [{ start: BASE, data: before }], 1000);
    const after = Buffer.concat([randomBytes(rewritten * PS), ...Array.from({ length: edited }, (_, i) => touch(before.subarray((rewritten + i) * PS, (rewritten + i + 1) * PS), i))]);
    const m1 = await ingest(repo, 1, [{ start: BASE, data: after }], 2000, 'acme', m0.snapshotId);
    // Off within the rewritten region, whole for 8192 new pages, then on for the rest of the edited ones.
    expect(m1.counts.deltaPages ?? 0).toBeGreaterThan(edited - 8192 - rewritten);
    expect(m1.counts.deltaPages ?? 0).toBeLessThan(edited);
    expect((await readBack(await new Repository(new DirectoryObjectStore(dir)).tenant('acme'), m1))[0]!.equals(after)).toBe(true);
  });

  it.each([
    ['a few', 8, 0, 56],
    ['most', 48, 48, 64],
  ])('find bases in the compactor’s memory; %s missing there are read back only when the chunk is not warm', async (_how, elsewhere, fetched, deltas) => {
    const pages = Array.from({ length: N }, () => randomBytes(PS));
    // Another compactor stored the first `elsewhere` pages: this one deduplicates them and never holds their bytes.
    await ingest(new Repository(store), 9, [{ start: BASE + 0x1000_0000, data: Buffer.concat(pages.slice(0, elsewhere)) }], 500);
    const parent = await ingest(repo, 1, [{ start: BASE, data: Buffer.concat(pages) }], 1000);
    expect(parent.counts.newPages).toBe(N - elsewhere);
    const edited = Buffer.concat(pages.map((p, i) => touch(p, i)));
    const child = await ingest(repo, 1, [{ start: BASE, data: edited }], 2000, 'acme', parent.snapshotId);
    expect(child.counts).toMatchObject({ newPages: N, deltaPages: deltas, basesFetched: fetched });
    expect((await readBack(await new Repository(new DirectoryObjectStore(dir)).tenant('acme'), child))[0]!.equals(edited)).toBe(true);
  });

  it('a base that cannot be read leaves its pages stored whole: the snapshot still commits and restores', async () => {
    const [m0] = await series(1);
    for await (const o of store.list(keys.packs('acme'))) await store.delete(o.key);
    // A compactor that did not store state 0 itself: its bases must come from the (deleted) packs.
    const m1 = await ingest(new Repository(store), 1, mem(1), 2000, 'acme', m0!.snapshotId);
    expect(m1.counts.deltaPages ?? 0).toBe(0);
    expect(m1.counts.newPages).toBe(N);
    expect((await readBack(await new Repository(new DirectoryObjectStore(dir)).tenant('acme'), m1))[0]!.equals(states[1]!)).toBe(true);
  });
});

describe('RecentPages', () => {
  it('gives back the page kept under a hash, nothing for another hash, and no more pages than it has room for', () => {
    const r = new RecentPages(PS, 4 * PS); // one set of four
    const pages = Array.from({ length: 64 }, () => randomBytes(PS));
    const hs = pages.map(sha);
    const out = Buffer.alloc(2 * PS);
    expect(r.take(hs[0]!, 0, out, 0)).toBe(false);
    pages.forEach((p, i) => r.put(hs[i]!, 0, Buffer.concat([Buffer.alloc(PS), p]), PS));
    let held = 0;
    // The last page put is always held (nothing replaced it), and taken once.
    expect(r.take(hs[63]!, 0, out, 0) && out.subarray(0, PS).equals(pages[63]!)).toBe(true);
    expect(r.take(hs[63]!, 0, out, 0)).toBe(false);
    for (let i = 0; i < 63; i++) {
      if (!r.take(hs[i]!, 0, out, PS)) continue;
      held++;
      expect(out.subarray(PS).equals(pages[i]!)).toBe(true);
    }
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(3);
  });
});
