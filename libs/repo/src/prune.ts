import { ErrorCodes, PvError } from '@pagevault/errors';
import { forEachLimited, type ObjectInfo, type ObjectStore } from '@pagevault/objstore';
import { lockExclusive, type ExclusiveOptions } from './exclusive-lock';
import { newLockId, type HeldLock } from './held-lock';
import { indexFileBytes } from './index-file';
import { NODE_PACK_BYTES } from './node-pack';
import { checkTenant, keys } from './keys';
import type { LockScan } from './lock-scan';
import { loadNodes, markLive } from './prune-mark';
import { planPrune, type PrunePlan } from './prune-plan';
import { MERGED_INDEX_ENTRIES, repackLive, repackNodes, rewriteIndexes } from './prune-repack';
import { TenantStore, packOptions, type RepoOptions } from './tenant-store';

export interface PruneOptions {
  /** Plan and report only; nothing is written or deleted. */
  dryRun?: boolean;
  /** Objects younger than this are never deleted nor repacked (default 1 hour). */
  graceMs?: number;
  /** A partly dead pack whose live share of bytes is below this is repacked (default 0.5; 0 never repacks). */
  repackBelow?: number;
  /** Requests in flight for reads and deletes (default 16). */
  width?: number;
  /**
   * More index files older than the grace than this, and all of them are merged into files of 256 Ki
   * entries (restic's rebuild-index; a compactor loads a tenant's index with a GET per file). Default 32.
   */
  consolidateAbove?: number;
  /** How new packs are written (as the compactor writes them: zstd level, pack size, page size). */
  packs?: Omit<RepoOptions, 'hasher'>;
  /** The tenant's exclusive lock: how long to wait for it (default: not at all), its staleness. */
  lock?: ExclusiveOptions;
}

export interface PruneReport {
  dryRun: boolean;
  /** Snapshots kept: every manifest of the tenant. */
  snapshots: number;
  livePages: number;
  /** Objects under maps/ (node packs, and nodes stored one an object), live nodes, node packs repacked. */
  mapNodes: { stored: number; live: number; deleted: number; spared: number; repacked: number; written: number };
  packs: { stored: number; deleted: number; repacked: number; written: number; spared: number };
  pagesRepacked: number;
  indexFiles: { stored: number; deleted: number; written: number };
  tagsDeleted: number;
  /** Lock objects not rewritten for the lock staleness, or whose holders died on this host: their holders are gone. */
  staleLocksDeleted: number;
  /** Temp files of puts whose writer died (a directory store; older than the grace period; not under dryRun). */
  unfinishedPuts: { deleted: number; bytes: number };
  /** Packs, index files and map nodes. Under dryRun, `after` counts repacked pages at their current size. */
  bytes: { before: number; after: number; freed: number };
}

/**
 * Garbage collection of one tenant (restic's prune): mark what the manifests reach, then sweep what they
 * do not. Write before delete: repacked pages and replacement index files are durable before any index
 * file goes, and index files naming a pack go before the pack, so no manifest and no index file ever
 * reaches an object that is gone. Objects younger than the grace period are kept (a running compactor
 * uploads before its manifest); a missing or corrupt manifest, node or index file stops prune before it
 * deletes anything.
 *
 * A real run holds the tenant's exclusive lock throughout (exclusive-lock.ts): it refuses with
 * PV_REPO_LOCKED while a snapshot is being ingested (`opts.lock.waitMs` to wait), and no snapshot starts
 * while it runs. Before its first delete it writes a new prune marker, so every compactor rebuilds its
 * page index before it deduplicates again (shared-lock.ts). A dry run takes no lock.
 */
export async function prune(store: ObjectStore, tenant: string, opts: PruneOptions = {}): Promise<PruneReport> {
  checkTenant(tenant);
  const { dryRun = false, graceMs = 3_600_000, repackBelow = 0.5, width = 16, consolidateAbove = 32 } = opts;
  if (!(graceMs >= 0) || !(repackBelow >= 0 && repackBelow <= 1) || !Number.isInteger(width) || width < 1 || !Number.isInteger(consolidateAbove) || consolidateAbove < 1) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `prune: grace ${graceMs} ms must be >= 0, repackBelow ${repackBelow} in [0, 1], width ${width} and consolidateAbove ${consolidateAbove} integers >= 1`);
  }
  if (dryRun) return sweep(store, tenant, opts, undefined);
  const { lock, scan, deadHolders } = await lockExclusive(store, tenant, opts.lock);
  try {
    return await sweep(store, tenant, opts, { lock, scan, deadHolders });
  } finally {
    await lock.release();
  }
}

async function sweep(store: ObjectStore, tenant: string, opts: PruneOptions, held: { lock: HeldLock; scan: LockScan; deadHolders: number } | undefined): Promise<PruneReport> {
  const { graceMs = 3_600_000, repackBelow = 0.5, width = 16, consolidateAbove = 32 } = opts;
  const packOpts = packOptions({ ...opts.packs, recentPagesBytes: 0 }); // nothing here is a delta base
  const nowMs = Date.now();
  // Map nodes are found through the index files: read once for them here, once more by the plan.
  const live = await markLive(store, tenant, width, (await loadNodes(store, tenant, width)).load);
  const reader = new TenantStore(store, tenant, packOpts);
  const plan = await planPrune(store, tenant, live, reader.index, { nowMs, graceMs, repackBelow, width, consolidateAbove });
  const report = reportOf(plan, { snapshots: live.snapshots.size, livePages: live.pages.size, liveNodes: live.nodes.size }, packOpts.packTargetBytes, !held);
  if (!held) return report;
  const { lock, scan, deadHolders } = held;

  const repacked = plan.repack.length ? await repackLive(reader, live, plan.repack, packOpts) : { packs: 0, pagesStored: 0, packBytes: 0, indexBytes: 0 };
  const nodesMoved = plan.repackNodes.length ? await repackNodes(reader, live, plan.repackNodes, packOpts) : { packs: 0, bytes: 0, indexBytes: 0 };
  const rewritten = await rewriteIndexes(reader, plan.dropIndexes, plan.consolidate);
  // Each delete first checks the lock is still ours: once it may look stale, a compactor may be ingesting.
  const removeAll = (objects: { key: string }[]) => forEachLimited(objects, width, (o) => (lock.assertHeld(), store.delete(o.key)));
  if (plan.dropIndexes.length + plan.deletePacks.length + plan.repack.length + plan.deleteNodes.length + plan.repackNodes.length > 0) {
    // The new generation is visible before anything goes: a compactor that loaded its index before (or
    // during) this prune rebuilds it at its next lock, even if this prune dies halfway.
    lock.assertHeld();
    await store.put(keys.lock(tenant, `pruned-${newLockId()}`), Buffer.alloc(0));
    await removeAll(scan.marks.map((m) => ({ key: keys.lock(tenant, m) })));
  }
  await removeAll(scan.stale);
  report.staleLocksDeleted = scan.stale.length + deadHolders; // and those of holders that died here, deleted taking the lock
  if (store.sweepUnfinished) {
    lock.assertHeld();
    const u = await store.sweepUnfinished(`t/${tenant}/`, graceMs);
    report.unfinishedPuts = { deleted: u.removed, bytes: u.bytes };
  }
  await removeAll(plan.dropIndexes.filter((d) => !rewritten.unchanged.has(d.info.key)).map((d) => d.info));
  await removeAll([...plan.deletePacks, ...plan.repack.map((r) => r.info)]);
  await removeAll([...plan.deleteNodes, ...plan.repackNodes.map((r) => r.info)]);
  await removeAll(plan.deleteTags);

  const written = repacked.packBytes + repacked.indexBytes + nodesMoved.bytes + nodesMoved.indexBytes + rewritten.bytes;
  report.packs.written = repacked.packs;
  report.mapNodes.written = nodesMoved.packs;
  report.indexFiles.written = repacked.packs + nodesMoved.packs + rewritten.files;
  const kept = plan.dropIndexes.filter((d) => rewritten.unchanged.has(d.info.key));
  report.indexFiles.deleted -= kept.length;
  report.bytes.after = report.bytes.before - deletedBytes(plan) + kept.reduce((n, d) => n + d.info.size, 0) + written;
  report.bytes.freed = report.bytes.before - report.bytes.after;
  return report;
}

function deletedBytes(plan: PrunePlan): number {
  const sum = (os: ObjectInfo[]) => os.reduce((n, o) => n + o.size, 0);
  return sum(plan.deletePacks) + sum(plan.repack.map((r) => r.info)) + sum(plan.dropIndexes.map((d) => d.info)) + sum(plan.deleteNodes) + sum(plan.repackNodes.map((r) => r.info));
}

/** The report as planned; a real run then replaces the estimates with what it wrote. */
function reportOf(plan: PrunePlan, l: { snapshots: number; livePages: number; liveNodes: number }, packTargetBytes: number, dryRun: boolean): PruneReport {
  const rewrites = plan.dropIndexes.filter((d) => d.keep.length > 0);
  const repackBytes = plan.repack.reduce((n, r) => n + r.liveBytes, 0);
  const newPacks = Math.ceil(repackBytes / packTargetBytes);
  const pagesRepacked = plan.repack.reduce((n, r) => n + r.live, 0);
  // Merged, a pack named by two files is written once: both estimates count it twice.
  const keptEntries = rewrites.reduce((n, d) => n + d.keepEntries, 0);
  const replacements = plan.consolidate ? Math.ceil(keptEntries / MERGED_INDEX_ENTRIES) : rewrites.length;
  const replacementBytes = plan.consolidate
    ? indexFileBytes(rewrites.reduce((n, d) => n + d.keep.length, 0), keptEntries) + (replacements - 1) * 16
    : rewrites.reduce((n, d) => n + indexFileBytes(d.keep.length, d.keepEntries), 0);
  const nodeBytes = plan.repackNodes.reduce((n, r) => n + r.liveBytes, 0);
  const newNodePacks = Math.ceil(nodeBytes / NODE_PACK_BYTES);
  const estimate = repackBytes + (newPacks ? indexFileBytes(newPacks, pagesRepacked) : 0) + replacementBytes + nodeBytes;
  const after = plan.stored.bytes - deletedBytes(plan) + Math.round(estimate);
  return {
    dryRun, snapshots: l.snapshots, livePages: l.livePages,
    mapNodes: { stored: plan.stored.mapNodes, live: l.liveNodes, deleted: plan.deleteNodes.length, spared: plan.spared.mapNodes, repacked: plan.repackNodes.length, written: newNodePacks },
    packs: { stored: plan.stored.packs, deleted: plan.deletePacks.length, repacked: plan.repack.length, written: newPacks, spared: plan.spared.packs },
    pagesRepacked,
    indexFiles: { stored: plan.stored.indexFiles, deleted: plan.dropIndexes.length, written: replacements + newPacks + newNodePacks },
    tagsDeleted: plan.deleteTags.length,
    staleLocksDeleted: 0,
    unfinishedPuts: { deleted: 0, bytes: 0 },
    bytes: { before: plan.stored.bytes, after, freed: plan.stored.bytes - after },
  };
}
