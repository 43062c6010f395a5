import { ErrorCodes, PvError } from '@pagevault/errors';
import { forEachLimited, type ObjectInfo, type ObjectStore } from '@pagevault/objstore';
import { indexFileBytes } from './index-file';
import { checkTenant } from './keys';
import { markLive } from './prune-mark';
import { planPrune, type PrunePlan } from './prune-plan';
import { repackLive, rewriteIndexes } from './prune-repack';
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
  /** How new packs are written (as the compactor writes them: zstd level, pack size, page size). */
  packs?: Omit<RepoOptions, 'hasher'>;
}

export interface PruneReport {
  dryRun: boolean;
  /** Snapshots kept: every manifest of the tenant. */
  snapshots: number;
  livePages: number;
  mapNodes: { stored: number; live: number; deleted: number; spared: number };
  packs: { stored: number; deleted: number; repacked: number; written: number; spared: number };
  pagesRepacked: number;
  indexFiles: { stored: number; deleted: number; written: number };
  tagsDeleted: number;
  /** Packs, index files and map nodes. Under dryRun, `after` counts repacked pages at their current size. */
  bytes: { before: number; after: number; freed: number };
}

/**
 * Garbage collection of one tenant (restic's prune): mark what the manifests reach, then sweep what they
 * do not. Write before delete: repacked pages and replacement index files are durable before any index
 * file goes, and index files naming a pack go before the pack, so no manifest and no index file ever
 * reaches an object that is gone. Objects younger than the grace period are kept (a running compactor
 * uploads before its manifest); a missing or corrupt manifest, node or index file stops prune before it
 * deletes anything. Prune assumes no compactor keeps a page index loaded from before it (docs/storage.md).
 */
export async function prune(store: ObjectStore, tenant: string, opts: PruneOptions = {}): Promise<PruneReport> {
  checkTenant(tenant);
  const { dryRun = false, graceMs = 3_600_000, repackBelow = 0.5, width = 16 } = opts;
  if (!(graceMs >= 0) || !(repackBelow >= 0 && repackBelow <= 1) || !Number.isInteger(width) || width < 1) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `prune: grace ${graceMs} ms must be >= 0, repackBelow ${repackBelow} in [0, 1], width ${width} an integer >= 1`);
  }
  const packOpts = packOptions(opts.packs);
  const nowMs = Date.now();
  const live = await markLive(store, tenant, width);
  const reader = new TenantStore(store, tenant, packOpts);
  const plan = await planPrune(store, tenant, live, reader.index, { nowMs, graceMs, repackBelow, width });
  const report = reportOf(plan, { snapshots: live.snapshots.size, livePages: live.pages.size, liveNodes: live.nodes.size }, packOpts.packTargetBytes, dryRun);
  if (dryRun) return report;

  const repacked = plan.repack.length ? await repackLive(reader, live, plan.repack, packOpts) : { packs: 0, pagesStored: 0, packBytes: 0, indexBytes: 0 };
  const rewritten = await rewriteIndexes(reader, plan.dropIndexes);
  const removeAll = (objects: ObjectInfo[]) => forEachLimited(objects, width, (o) => store.delete(o.key));
  await removeAll(plan.dropIndexes.map((d) => d.info));
  await removeAll([...plan.deletePacks, ...plan.repack.map((r) => r.info)]);
  await removeAll(plan.deleteNodes);
  await removeAll(plan.deleteTags);

  const written = repacked.packBytes + repacked.indexBytes + rewritten.bytes;
  report.packs.written = repacked.packs;
  report.indexFiles.written = repacked.packs + rewritten.files;
  report.bytes.after = report.bytes.before - deletedBytes(plan) + written;
  report.bytes.freed = report.bytes.before - report.bytes.after;
  return report;
}

function deletedBytes(plan: PrunePlan): number {
  const sum = (os: ObjectInfo[]) => os.reduce((n, o) => n + o.size, 0);
  return sum(plan.deletePacks) + sum(plan.repack.map((r) => r.info)) + sum(plan.dropIndexes.map((d) => d.info)) + sum(plan.deleteNodes);
}

/** The report as planned; a real run then replaces the estimates with what it wrote. */
function reportOf(plan: PrunePlan, l: { snapshots: number; livePages: number; liveNodes: number }, packTargetBytes: number, dryRun: boolean): PruneReport {
  const rewrites = plan.dropIndexes.filter((d) => d.keep.length > 0);
  const repackBytes = plan.repack.reduce((n, r) => n + r.liveBytes, 0);
  const newPacks = Math.ceil(repackBytes / packTargetBytes);
  const pagesRepacked = plan.repack.reduce((n, r) => n + r.live, 0);
  const estimate =
    repackBytes + (newPacks ? indexFileBytes(newPacks, pagesRepacked) : 0) + rewrites.reduce((n, d) => n + indexFileBytes(d.keep.length, d.keepEntries), 0);
  const after = plan.stored.bytes - deletedBytes(plan) + Math.round(estimate);
  return {
    dryRun, snapshots: l.snapshots, livePages: l.livePages,
    mapNodes: { stored: plan.stored.mapNodes, live: l.liveNodes, deleted: plan.deleteNodes.length, spared: plan.spared.mapNodes },
    packs: { stored: plan.stored.packs, deleted: plan.deletePacks.length, repacked: plan.repack.length, written: newPacks, spared: plan.spared.packs },
    pagesRepacked,
    indexFiles: { stored: plan.stored.indexFiles, deleted: plan.dropIndexes.length, written: rewrites.length + newPacks },
    tagsDeleted: plan.deleteTags.length,
    bytes: { before: plan.stored.bytes, after, freed: plan.stored.bytes - after },
  };
}
