import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { forEachLimited, type ObjectStore } from '@pagevault/objstore';
import { lockExclusive, type ExclusiveOptions } from './exclusive-lock';
import type { HeldLock } from './held-lock';
import { checkIndexFile, encodeIndexFile, isIndexFileKey, readIndexFile } from './index-file';
import { basename, checkTenant, keys, namedByHash } from './keys';
import { NODE_PACK_MAGIC, nodeObjectIntact, readNodePackTrailer, type NodeEntry } from './node-pack';
import { blobsOf, checkPlainBlob, deltaHeader, readPackTrailer, type BlobBases, type PackEntry } from './pack';

export interface RepairIndexOptions {
  /** Find and report only; nothing is written or deleted. */
  dryRun?: boolean;
  /** The tenant's exclusive lock (as prune takes it): how long to wait for it, its staleness. */
  lock?: ExclusiveOptions;
  /** Objects read at a time (default 4: packs are read whole). */
  width?: number;
  /** The tenant's page size, to check the pages of a damaged pack (default 4096). */
  pageSize?: number;
  /** Packs an index file written by the repair names at most: what its memory holds at a time (default 64). */
  packsPerFile?: number;
}

export interface RepairIndexReport {
  dryRun: boolean;
  /** Index files read, and those found damaged (not hashing to their name, or not parsing): deleted once replaced. */
  indexFiles: { checked: number; damaged: string[] };
  /** Packs and node packs no intact index file names, read and indexed again. */
  packsReindexed: number;
  nodePacksReindexed: number;
  pagesReindexed: number;
  /**
   * Packs that are themselves damaged (not hashing to their name). Their plain blobs are inflated and
   * every page checked against its hash: the intact ones are indexed again (restic salvages blobs the
   * same way), the rest — damaged blobs, delta blobs (checking one needs its bases), or every blob when
   * the trailer cannot be read — are not, so nothing ever deduplicates against a damaged page.
   */
  damagedPacks: string[];
  /** Pages of damaged packs left out (see damagedPacks): they stay missing, and verify names their snapshots. */
  pagesLost: number;
  /** Files under index/ that are not index files (their names are not a SHA-256): ignored, never deleted. */
  strayFiles: string[];
  /** The index files written in their place. */
  written: string[];
}

/**
 * restic's `repair index`: finds the index files that are damaged (their bytes do not hash to their name,
 * or do not parse) and the packs and node packs that no intact index file names (a damaged or deleted
 * index file's, or an upload whose index file was never written), reads those packs' trailers (and their
 * delta blobs' bases, which prune must keep), and writes index files for them; then deletes the damaged
 * ones. Pages are found again without anything being stored twice. Holds the tenant's exclusive lock, so
 * no snapshot is ingested and no prune runs meanwhile; a dry run takes no lock and writes nothing.
 */
export async function repairIndex(store: ObjectStore, tenant: string, opts: RepairIndexOptions = {}): Promise<RepairIndexReport> {
  checkTenant(tenant);
  const width = opts.width ?? 4;
  if (!Number.isInteger(width) || width < 1) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `repair-index: width ${width} must be an integer >= 1`);
  const pageSize = opts.pageSize ?? 4096;
  const perFile = opts.packsPerFile ?? 64;
  if (!Number.isInteger(perFile) || perFile < 1) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `repair-index: packsPerFile ${perFile} must be an integer >= 1`);
  if (opts.dryRun) return repair(store, tenant, width, pageSize, perFile, undefined);
  const { lock } = await lockExclusive(store, tenant, opts.lock);
  try {
    return await repair(store, tenant, width, pageSize, perFile, lock);
  } finally {
    await lock.release();
  }
}

async function repair(store: ObjectStore, tenant: string, width: number, pageSize: number, perFile: number, lock: HeldLock | undefined): Promise<RepairIndexReport> {
  const report: RepairIndexReport = { dryRun: !lock, indexFiles: { checked: 0, damaged: [] }, packsReindexed: 0, nodePacksReindexed: 0, pagesReindexed: 0, damagedPacks: [], pagesLost: 0, strayFiles: [], written: [] };
  // Every pack and node pack an intact index file names.
  const named = new Set<string>();
  const indexFiles: string[] = [];
  for await (const o of store.list(keys.indexes(tenant))) (isIndexFileKey(o.key) ? indexFiles : report.strayFiles).push(o.key);
  await forEachLimited(indexFiles, width, async (key) => {
    try {
      for (const p of readIndexFile(checkIndexFile(await store.get(key), key), key, () => undefined)) named.add(p);
    } catch (e) {
      if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) return;
      if (!isPvError(e, ErrorCodes.OBJECT_CORRUPT)) throw e;
      report.indexFiles.damaged.push(key);
    }
  });
  report.indexFiles.checked = indexFiles.length;
  report.indexFiles.damaged.sort();

  const unnamed = async (prefix: string) => {
    const out: string[] = [];
    for await (const o of store.list(prefix)) if (!named.has(basename(o.key))) out.push(o.key);
    return out;
  };
  const nodePacks: { sha: string; entries: NodeEntry[] }[] = [];
  await forEachLimited(await unnamed(keys.mapNodes(tenant)), width, async (key) => {
    try {
      const b = await store.get(key);
      if (!nodeObjectIntact(b, key)) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `node pack ${key}: its bytes do not hash to its name`, { details: { key } });
      // A node written before node packs is an object of its own, found by its name: no index needed.
      if (b.length < 16 || b.compare(NODE_PACK_MAGIC, 0, 4, b.length - 4) !== 0) return;
      nodePacks.push({ sha: basename(key), entries: readNodePackTrailer(b, key) });
    } catch (e) {
      if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) return;
      if (!isPvError(e, ErrorCodes.OBJECT_CORRUPT)) throw e;
      report.damagedPacks.push(key);
    }
  });
  nodePacks.sort((a, b) => (a.sha < b.sha ? -1 : 1));
  report.nodePacksReindexed = nodePacks.length;

  // Packs a chunk at a time, each chunk's index file written before the next is read: memory holds one
  // chunk's entries, however many index files were lost. Write before delete: the replacements are
  // durable before a damaged file goes.
  const unnamedPacks = await unnamed(keys.packs(tenant));
  for (let i = 0; i < unnamedPacks.length || (i === 0 && nodePacks.length > 0); i += perFile) {
    const packs: { sha: string; entries: PackEntry[]; bases: BlobBases[] }[] = [];
    await forEachLimited(unnamedPacks.slice(i, i + perFile), width, async (key) => {
      const p = await reindexPackAt(store, key, pageSize, report);
      if (p) packs.push(p);
    });
    packs.sort((a, b) => (a.sha < b.sha ? -1 : 1));
    report.packsReindexed += packs.length;
    report.pagesReindexed += packs.reduce((n, p) => n + p.entries.length, 0);
    if (!lock || (packs.length === 0 && (i > 0 || nodePacks.length === 0))) continue;
    const f = encodeIndexFile(packs, i === 0 ? nodePacks : []);
    lock.assertHeld();
    await store.put(keys.index(tenant, f.sha), f.bytes, f.sha);
    report.written.push(keys.index(tenant, f.sha));
  }
  report.damagedPacks.sort();
  if (!lock) return report;

  for (const key of report.indexFiles.damaged) {
    // A rebuilt file often has the damaged one's very bytes, so its name: the put already replaced it.
    if (report.written.includes(key)) continue;
    lock.assertHeld();
    await store.delete(key);
  }
  return report;
}

/**
 * A pack no intact index file names, as an index file lists it: intact, all of it; damaged (it does not
 * hash to its name), its checked plain blobs only, and it goes to the report; unreadable, nothing.
 */
async function reindexPackAt(store: ObjectStore, key: string, pageSize: number, report: RepairIndexReport): Promise<{ sha: string; entries: PackEntry[]; bases: BlobBases[] } | undefined> {
  try {
    const b = await store.get(key);
    if (namedByHash(b, key)) return reindexPack(b, key);
    report.damagedPacks.push(key);
    const entries = readPackTrailer(b, key);
    const intact = checkedBlobs(b, key, entries, pageSize);
    report.pagesLost += entries.length - intact.length;
    return intact.length ? { sha: basename(key), entries: intact, bases: [] } : undefined;
  } catch (e) {
    if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) return undefined;
    if (!isPvError(e, ErrorCodes.OBJECT_CORRUPT)) throw e;
    if (!report.damagedPacks.includes(key)) report.damagedPacks.push(key);
    return undefined;
  }
}

/** A pack's pages from its trailer, and its delta blobs' bases from their headers. */
function reindexPack(pack: Buffer, key: string): { sha: string; entries: PackEntry[]; bases: BlobBases[] } {
  const entries = readPackTrailer(pack, key);
  const bases: BlobBases[] = [];
  const seen = new Set<number>();
  for (const e of entries) {
    if (e.depth === 0 || seen.has(e.blobOffset)) continue;
    seen.add(e.blobOffset);
    const blob = pack.subarray(e.blobOffset, e.blobOffset + e.blobLength);
    const h = deltaHeader(blob, `pack ${key} blob @${e.blobOffset}`);
    if (!h) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `pack ${key}: blob @${e.blobOffset} is listed as a delta but is not one`, { details: { key } });
    bases.push({ blobOffset: e.blobOffset, hashes: Buffer.from(blob.subarray(8, h.body)) });
  }
  return { sha: basename(key), entries, bases };
}

/** The entries of a damaged pack's plain blobs whose every page inflates to its hash; the rest are left out. */
function checkedBlobs(pack: Buffer, key: string, entries: PackEntry[], pageSize: number): PackEntry[] {
  const kept: PackEntry[] = [];
  // A delta blob is checked only with its bases: left out.
  for (const blob of blobsOf(entries)) if (blob[0]!.depth === 0 && !(checkPlainBlob(pack, key, blob, pageSize) instanceof PvError)) kept.push(...blob);
  return kept;
}
