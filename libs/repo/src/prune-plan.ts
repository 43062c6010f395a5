import { ErrorCodes, PvError } from '@pagevault/errors';
import { forEachLimited, type ObjectInfo, type ObjectStore } from '@pagevault/objstore';
import { DeltaBases } from './delta-bases';
import { checkIndexFile, isIndexFileKey, readIndexFile } from './index-file';
import { basename, keys } from './keys';
import type { PageIndex } from './page-index';
import { NOWHERE, listAll, refusal, type LiveSet } from './prune-mark';

export interface PlanOptions {
  nowMs: number;
  graceMs: number;
  repackBelow: number;
  width: number;
  /** More index files older than the grace than this: all of them are merged into a few (restic's rebuild-index). */
  consolidateAbove: number;
}

/** One pack or node pack as the index files describe it. */
interface PackState {
  indexFiles: string[];
  /** The index file whose entries are counted: a pack named twice (an interrupted prune) counts once. */
  countedBy?: string;
  entries: number;
  /** Entries that are the index's location of a page some snapshot reaches, and their share of blob bytes. */
  live: number;
  liveBytes: number;
}

/** A partly live node pack below the threshold: its live nodes move to a new node pack, then it goes. */
export interface NodeRepack {
  info: ObjectInfo;
  sha: string;
  live: number;
  liveBytes: number;
}

export interface Repack {
  info: ObjectInfo;
  sha: string;
  /** The index file that lists its entries. */
  indexFile: string;
  live: number;
  liveBytes: number;
}

/** What a prune deletes and rewrites; built without changing anything (a dry run stops here). */
export interface PrunePlan {
  /** Packs no snapshot reaches a page of, and packs no index file names. */
  deletePacks: ObjectInfo[];
  /** Partly live packs below the threshold: their live pages move to new packs, then they go. */
  repack: Repack[];
  /** Index files naming a pack that goes, each with the packs (and entries) a replacement keeps. */
  dropIndexes: { info: ObjectInfo; keep: string[]; keepEntries: number }[];
  /** Every index file older than the grace is in dropIndexes, and their replacements are merged into a few. */
  consolidate: boolean;
  /** Node packs no live node is in, and map nodes of their own no snapshot reaches. */
  deleteNodes: ObjectInfo[];
  /** Partly live node packs whose live share of bytes is below the threshold. */
  repackNodes: NodeRepack[];
  /** Tag markers of snapshots that no longer exist. */
  deleteTags: ObjectInfo[];
  /** Objects that would go but are younger than the grace period. */
  spared: { packs: number; mapNodes: number };
  stored: { packs: number; indexFiles: number; mapNodes: number; bytes: number };
}

/**
 * Sweep decisions from the live set. Reads every index file once: into `reader` (the first location of
 * each page wins, as in any PageIndex: that copy is the live one, later duplicates are dead) and into
 * per-pack counts. Refuses (deleting nothing) if a live page is in no index file or in a pack that is
 * missing. Never touches an object younger than the grace period: neither a pack nor anything a young
 * index file names.
 */
export async function planPrune(store: ObjectStore, tenant: string, live: LiveSet, reader: PageIndex, o: PlanOptions): Promise<PrunePlan> {
  const young = (i: ObjectInfo): boolean => {
    if (o.graceMs <= 0) return false;
    if (i.modifiedMs === undefined) {
      throw new PvError(ErrorCodes.CONFIG_INVALID, `${store.description} does not say when ${i.key} was written: prune cannot keep its grace period`, { details: { key: i.key } });
    }
    return o.nowMs - i.modifiedMs < o.graceMs;
  };
  const stateIn = (m: Map<string, PackState>, sha: string) => m.get(sha) ?? m.set(sha, { indexFiles: [], entries: 0, live: 0, liveBytes: 0 }).get(sha)!;
  /** Kept as it is: some of it is live, and all of it is or enough of its bytes are. */
  const kept = (s: PackState | undefined, size: number) => s !== undefined && s.live > 0 && (s.live >= s.entries || s.liveBytes / size >= o.repackBelow);
  const packs = new Map<string, PackState>();
  const pack = (sha: string) => stateIn(packs, sha);
  const files = new Map<string, { info: ObjectInfo; names: string[]; perPack: Map<string, number> }>();
  const nodePacks = new Map<string, PackState>();
  const nodePack = (sha: string) => stateIn(nodePacks, sha);
  let claimed = 0;
  const basesOf = new DeltaBases();
  await forEachLimited((await listAll(store, keys.indexes(tenant))).filter((i) => isIndexFileKey(i.key)), o.width, async (info) => {
    const perPack = new Map<string, number>();
    let names: string[];
    try {
      names = readIndexFile(checkIndexFile(await store.get(info.key), info.key), info.key, (h, at, loc) => {
        const canonical = reader.add(h, at, loc); // the first location of a page is the live one
        perPack.set(loc.pack, (perPack.get(loc.pack) ?? 0) + 1);
        const s = pack(loc.pack);
        if (canonical && live.pages.has(h, at)) {
          claimed++;
          s.live++;
          s.liveBytes += loc.blobLength / loc.blobPages;
        }
        s.countedBy ??= info.key;
        if (s.countedBy === info.key) s.entries++;
      }, (p, blobOffset, b, at, n) => {
        basesOf.add(p, blobOffset, b, at, n);
      }, (p, b, at, e) => {
        perPack.set(p, (perPack.get(p) ?? 0) + 1);
        const s = nodePack(p);
        s.countedBy ??= info.key; // a node pack named by two index files counts once
        if (s.countedBy !== info.key) return;
        s.entries++;
        if (live.nodes.has(b.toString('hex', at, at + 32))) {
          s.live++;
          s.liveBytes += e.length;
        }
      });
    } catch (e) {
      throw refusal(e, `index file ${info.key}`, { key: info.key });
    }
    for (const p of names) (nodePacks.has(p) ? nodePack(p) : pack(p)).indexFiles.push(info.key);
    files.set(info.key, { info, names, perPack });
  });
  // A live page in a delta blob needs the blob's bases (and theirs, down the chain): live too, counted
  // in their packs like any other live page. Pages added here are visited by the same loop.
  if (basesOf.size > 0) {
    for (const h of live.pages.hashes()) {
      const r = reader.locate(h);
      if (r < 0 || reader.depthOf(r) === 0) continue;
      const found = basesOf.find(reader.packOf(r), reader.blobOffsetOf(r));
      if (found < 0) {
        const pack = keys.pack(tenant, reader.packOf(r));
        throw new PvError(ErrorCodes.OBJECT_CORRUPT, `delta blob @${reader.blobOffsetOf(r)} of ${pack} has no bases in any index file: prune deletes nothing`, { details: { key: pack } });
      }
      const bases = basesOf.hashes;
      for (let at = basesOf.firstAt(found), end = at + basesOf.count(found) * 32; at < end; at += 32) {
        if (!live.pages.add(bases, at, NOWHERE)) continue;
        const b = reader.locate(bases, at);
        if (b < 0) continue; // reported below with the other live pages in no index file
        const s = pack(reader.packOf(b));
        claimed++;
        s.live++;
        s.liveBytes += reader.blobLengthOf(b) / reader.blobPagesOf(b);
      }
    }
  }
  if (claimed < live.pages.size) {
    for (const h of live.pages.hashes()) {
      if (reader.has(h)) continue;
      const page = h.toString('hex');
      throw new PvError(ErrorCodes.OBJECT_NOT_FOUND, `page ${page}, reached by a snapshot of tenant ${tenant}, is in no index file: prune deletes nothing (\`pagevault repair-index\` rebuilds damaged or missing index files from the packs)`, { details: { page } });
    }
  }

  // Packs are listed after the index files: every pack an index file names was stored before it.
  const listed = await listAll(store, keys.packs(tenant));
  const stored = new Set(listed.map((i) => basename(i.key)));
  for (const [sha, s] of packs) {
    if (s.live > 0 && !stored.has(sha)) {
      throw new PvError(ErrorCodes.OBJECT_NOT_FOUND, `pack ${keys.pack(tenant, sha)} holds pages snapshots reach (index ${s.indexFiles[0]}) but is missing: prune deletes nothing`, { details: { key: keys.pack(tenant, sha) } });
    }
  }
  const plan: PrunePlan = {
    deletePacks: [], repack: [], dropIndexes: [], deleteNodes: [], repackNodes: [], deleteTags: [], consolidate: false, spared: { packs: 0, mapNodes: 0 },
    stored: { packs: listed.length, indexFiles: files.size, mapNodes: 0, bytes: 0 },
  };
  const gone = new Set<string>();
  const namedByYoung = (s: PackState | undefined) => s?.indexFiles.some((k) => young(files.get(k)!.info)) ?? false;
  for (const info of listed) {
    plan.stored.bytes += info.size;
    const sha = basename(info.key);
    const s = packs.get(sha);
    if (kept(s, info.size)) continue;
    if (young(info) || namedByYoung(s)) {
      plan.spared.packs++;
      continue;
    }
    gone.add(sha);
    if (s && s.live > 0) plan.repack.push({ info, sha, indexFile: s.countedBy!, live: s.live, liveBytes: s.liveBytes });
    else plan.deletePacks.push(info);
  }
  // Index entries of packs already missing (and reached by nothing, checked above) go with their index files.
  for (const [sha, s] of packs) if (!stored.has(sha) && !namedByYoung(s)) gone.add(sha);

  // Under maps/: node packs, repacked like packs when partly live below the threshold, and nodes stored
  // one an object (before node packs) or node packs no index file names (a crash between).
  const listedMaps = new Set<string>();
  for (const info of await listAll(store, keys.mapNodes(tenant))) {
    const sha = basename(info.key);
    listedMaps.add(sha);
    plan.stored.mapNodes++;
    plan.stored.bytes += info.size;
    const np = nodePacks.get(sha);
    if (np ? kept(np, info.size) : live.nodes.has(sha)) continue;
    if (young(info) || namedByYoung(np)) {
      plan.spared.mapNodes++;
      continue;
    }
    if (np) gone.add(sha);
    if (np && np.live > 0) plan.repackNodes.push({ info, sha, live: np.live, liveBytes: np.liveBytes });
    else plan.deleteNodes.push(info);
  }
  for (const [sha, np] of nodePacks) if (!listedMaps.has(sha) && np.live === 0 && !namedByYoung(np)) gone.add(sha);

  // A compactor loads a tenant's index with one GET per index file (one per flush): past a threshold, every
  // old file is replaced by a few merged ones. Young files stay (a merged file naming their packs too is
  // harmless: a pack named twice counts once).
  const old = [...files.values()].filter((f) => !young(f.info));
  plan.consolidate = old.length > o.consolidateAbove;
  for (const { info, names, perPack } of files.values()) {
    plan.stored.bytes += info.size;
    const merge = plan.consolidate && !young(info);
    if (!merge && !names.some((p) => gone.has(p))) continue;
    const keep = names.filter((p) => !gone.has(p));
    plan.dropIndexes.push({ info, keep, keepEntries: keep.reduce((n, p) => n + (perPack.get(p) ?? 0), 0) });
  }
  for (const info of await listAll(store, keys.tags(tenant))) {
    if (!live.snapshots.has(basename(info.key)) && !young(info)) plan.deleteTags.push(info);
  }
  return plan;
}
