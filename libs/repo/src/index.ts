export { keys, checkTenant } from './keys';
export { PageIndex, type PageLocation } from './page-index';
export { PackBuilder, readPackTrailer, inflateBlob, BLOB_PAGES } from './pack';
export { PageKind, PageList } from './page-list';
export { buildPageMap, mapNodeBytes, readPageMap, LEAF_PAGES, type MapRoot, type MapNode, type MapShape } from './page-map';
export type { Manifest, ManifestVma, FailedSnapshot } from './manifest';
export { parseManifest } from './manifest';
export { encodeIndexFile, loadIndexFile } from './index-file';
export { TenantStore, type RepoOptions } from './tenant-store';
export { Repository, type RepositoryOptions } from './repository';
export { SnapshotIngest, type IngestOptions } from './ingest';
export { lockExclusive, type ExclusiveOptions } from './exclusive-lock';
export { HeldLock, type LockOptions } from './held-lock';
export { scanLocks, describeLocks, ownIdentity, identityScope, processGone, type LockEntry, type LockKind, type LockScan } from './lock-scan';
export type { LockWait, SharedHold } from './shared-lock';
export { PageFetcher, type FetchOptions } from './page-fetcher';
export { checkTag } from './keys';
export {
  addTags, listSnapshots, parseLatest, readTags, removeTags, resolveSnapshot, snapshotFilter, type SnapshotFilter,
  type TaggedManifest,
} from './snapshot-refs';
export { forgetSnapshots, beyondKeepLast } from './forget';
export { prune, type PruneOptions, type PruneReport } from './prune';
export { checkStore, type StoreCheck } from './check-store';
export { repairIndex, type RepairIndexOptions, type RepairIndexReport } from './repair-index';
