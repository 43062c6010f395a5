import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { readIndexFile } from './index-file';
import { keys } from './keys';
import type { Manifest } from './manifest';
import { prune } from './prune';
import { repairIndex } from './repair-index';
import { Repository } from './repository';
import { BASE, PS, ingest, readBack } from './test-helpers';

let storeRef: DirectoryObjectStore | undefined;

describe('repairIndex', () => {
  let dir: string;
  let store: DirectoryObjectStore;
  // A: 32 random pages; B: an incremental of A with 8 pages edited a little (stored as delta blobs).
  const a = randomBytes(32 * PS);
  const b = Buffer.from(a);
  for (let p = 0; p < 8; p++) b.writeUInt32LE(p + 1, p * PS + 100);
  let A: Manifest;
  let B: Manifest;
  const indexKeys = async () => {
    const out: string[] = [];
    for await (const o of store.list(keys.indexes('acme'))) out.push(o.key);
    return out;
  };
  /** Every delta blob's bases the index files list, as "pack@offset:hashes". */
  const bases = async () => {
    const out: string[] = [];
    for (const k of await indexKeys()) readIndexFile(await store.get(k), k, () => undefined, (pack, off, buf, at, n) => out.push(`${pack}@${off}:${buf.toString('hex', at, at + 32 * n)}`));
    return out.sort();
  };
  const path = (key: string) => join(dir, ...key.split('/'));
  const fresh = () => new Repository(new DirectoryObjectStore(dir)).tenant('acme');

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-repair-'));
    store = new DirectoryObjectStore(dir);
    storeRef = store;
    const repo = new Repository(store);
    A = await ingest(repo, 1, [{ start: BASE, data: a }], 1000);
    B = await ingest(repo, 1, [{ start: BASE, data: b }], 2000, 'acme', A.snapshotId);
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('leaves a damaged index file out instead of failing, rebuilds it from the packs, delta bases included', async () => {
    expect(B.counts.newPages).toBe(8);
    const before = await bases();
    expect(before.length).toBeGreaterThan(0); // B's edits went as deltas: their bases are listed
    const files = await indexKeys();
    expect(files.length).toBe(2);
    // Damage both: truncate one, flip a byte in the other (a length check alone would not see it).
    await truncate(path(files[0]!), 100);
    const flipped = await readFile(path(files[1]!));
    flipped[flipped.length - 40]! ^= 1;
    await writeFile(path(files[1]!), flipped);

    const told: string[] = [];
    const t = await new Repository(new DirectoryObjectStore(dir), { onDamagedIndex: (tenant, d) => told.push(...d.map((e) => `${tenant}:${String(e.details['key'])}`)) }).tenant('acme');
    // Opens: the damaged files are left out, not fatal, and the repository's owner is told.
    expect(t.damagedIndexes.map((e) => e.details['key']).sort()).toEqual([...files].sort());
    expect(told.sort()).toEqual(files.map((k) => `acme:${k}`).sort());
    await expect(readBack(t, B)).rejects.toMatchObject({ code: ErrorCodes.OBJECT_NOT_FOUND, message: expect.stringContaining('pagevault repair-index') });
    await expect(prune(store, 'acme', { dryRun: true })).rejects.toMatchObject({ code: ErrorCodes.OBJECT_CORRUPT, message: expect.stringContaining('repair-index') });

    const dry = await repairIndex(store, 'acme', { dryRun: true });
    expect(dry).toMatchObject({ dryRun: true, indexFiles: { checked: 2, damaged: [...files].sort() }, packsReindexed: 2, nodePacksReindexed: 2, pagesReindexed: 40, written: [] });
    expect(await indexKeys()).toEqual(files);

    const r = await repairIndex(store, 'acme');
    expect(r).toMatchObject({ dryRun: false, packsReindexed: 2, nodePacksReindexed: 2, pagesReindexed: 40, damagedPacks: [] });
    expect(await indexKeys()).toEqual(r.written.sort());
    expect(await bases()).toEqual(before); // every delta blob's bases, as they were
    const again = await fresh();
    expect(again.damagedIndexes).toEqual([]);
    expect((await readBack(again, A))[0]!.equals(a)).toBe(true);
    expect((await readBack(again, B))[0]!.equals(b)).toBe(true);
    // Prune trusts the rebuilt index: nothing is dead, B's bases are kept, both still restore.
    const p = await prune(store, 'acme', { graceMs: 0 });
    expect(p.packs.deleted).toBe(0);
    expect((await readBack(await fresh(), B))[0]!.equals(b)).toBe(true);
    // Nothing left to repair.
    expect(await repairIndex(store, 'acme')).toMatchObject({ indexFiles: { damaged: [] }, packsReindexed: 0, written: [] });
  });

  it('writes a file per packsPerFile packs, so its memory holds one chunk of a large repair', async () => {
    for (const k of await indexKeys()) await store.delete(k);
    const r = await repairIndex(store, 'acme', { packsPerFile: 1 });
    expect(r).toMatchObject({ packsReindexed: 2, nodePacksReindexed: 2, pagesReindexed: 40 });
    expect(r.written.length).toBe(2);
    expect((await readBack(await fresh(), A))[0]!.equals(a)).toBe(true);
    expect((await readBack(await fresh(), B))[0]!.equals(b)).toBe(true);
  });

  it('indexes again the packs of a deleted index file, and reports a damaged pack without indexing it', async () => {
    const files = await indexKeys();
    await store.delete(files[1]!);
    let packs: string[] = [];
    for await (const o of store.list(keys.packs('acme'))) packs.push(o.key);
    packs = packs.sort();
    const r = await repairIndex(store, 'acme');
    expect(r.indexFiles.damaged).toEqual([]);
    expect(r.packsReindexed + r.nodePacksReindexed).toBeGreaterThan(0);
    expect((await readBack(await fresh(), B))[0]!.equals(b)).toBe(true);
    // A pack named by no index file and damaged itself: reported, left alone, not indexed.
    const orphan = keys.pack('acme', 'ab'.repeat(32));
    await store.put(orphan, Buffer.from('not a pack'));
    const r2 = await repairIndex(store, 'acme');
    expect(r2).toMatchObject({ damagedPacks: [orphan], packsReindexed: 0, written: [] });
  });

  it('reports a node pack cut short (its trailing magic gone with its trailer) as damaged, not as a node of its own', async () => {
    for (const k of await indexKeys()) await store.delete(k);
    const nodePacks: string[] = [];
    for await (const o of store.list(keys.mapNodes('acme'))) nodePacks.push(o.key);
    expect(nodePacks.length).toBeGreaterThan(0);
    await truncate(path(nodePacks[0]!), 40);
    const r = await repairIndex(store, 'acme', { dryRun: true });
    expect(r.damagedPacks).toEqual([nodePacks[0]]);
    expect(r.nodePacksReindexed).toBe(nodePacks.length - 1);
  });

  it('keeps a rebuilt file that has the damaged one\'s name, ignores stray files, and salvages the intact blobs of a damaged pack', async () => {
    const files = await indexKeys();
    await writeFile(join(dir, 't', 'acme', 'index', 'README.txt'), 'not an index file');
    // One damaged file alone: the rebuild has its very bytes, so its name.
    await truncate(path(files[0]!), 100);
    const r = await repairIndex(store, 'acme');
    expect(r.indexFiles.damaged).toEqual([files[0]]);
    expect(r.written).toEqual([files[0]]);
    expect(r.strayFiles).toEqual(['t/acme/index/README.txt']);
    expect(await indexKeys()).toEqual([...files, 't/acme/index/README.txt'].sort());
    const t = await fresh();
    expect(t.damagedIndexes).toEqual([]);
    expect((await readBack(t, A))[0]!.equals(a)).toBe(true);

    // A's pack with one byte flipped inside its first blob, and its index file gone.
    const packKey = await firstPackOf(files);
    const bytes = await readFile(path(packKey.pack));
    bytes[packKey.firstBlobOffset + 10]! ^= 0xff;
    await writeFile(path(packKey.pack), bytes);
    await store.delete(packKey.index);
    const s2 = await repairIndex(store, 'acme');
    expect(s2.damagedPacks).toEqual([packKey.pack]);
    expect(s2.pagesLost).toBe(16); // that blob's pages, no more
    const t2 = await fresh();
    const err = await readBack(t2, A).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: ErrorCodes.OBJECT_NOT_FOUND });
    // The pages of its other blobs are found again: a snapshot of them alone reads back.
    const rest = await ingest(new Repository(store), 2, [{ start: BASE, data: a.subarray(16 * PS) }], 3000);
    expect(rest.counts.newPages).toBe(0);
    expect((await readBack(await fresh(), rest))[0]!.equals(a.subarray(16 * PS))).toBe(true);
  });
});

/** A's pack (named by the index file listing 32 plain pages), its first blob's offset, and that index file. */
async function firstPackOf(files: string[]): Promise<{ pack: string; firstBlobOffset: number; index: string }> {
  for (const k of files) {
    const locs: { pack: string; blobOffset: number; depth: number }[] = [];
    readIndexFile(await storeRef!.get(k), k, (_b, _at, loc) => locs.push({ pack: loc.pack, blobOffset: loc.blobOffset, depth: loc.depth ?? 0 }));
    if (locs.length === 32 && locs.every((l) => l.depth === 0)) {
      return { pack: keys.pack('acme', locs[0]!.pack), firstBlobOffset: Math.min(...locs.map((l) => l.blobOffset)), index: k };
    }
  }
  throw new Error('no index file of 32 plain pages');
}
