// Capture: reads the memory of live processes into the pagevault stream format.
export { captureSnapshot } from './capture/capture-snapshot';
export {
  captureGroup,
  type CaptureGroupOptions,
  type GroupTargets,
  type GroupSnapshot,
  type GroupMemberResult,
} from './capture/capture-group';
export {
  preCopy,
  type PreCopyOptions,
  type PreCopyResult,
  type PreCopyRound,
  type PreCopyRoundStats,
} from './capture/pre-copy';
export {
  DEFAULT_BATCH_PAGES,
  type CaptureOptions,
  type CaptureParent,
  type CaptureResult,
  type CaptureStats,
  type ChangeDetection,
} from './capture/options';

export { readPages, writePages, type PageIoOptions } from './memory/page-io';
export { RemoteReader } from './memory/remote-reader';
export { IOV_MAX } from './memory/iovec';
export { systemPageSize } from './memory/libc';

export {
  freezeProcesses,
  assertProcess,
  checkTargets,
  type FreezeMethod,
  type FreezeOptions,
  type FrozenGroup,
} from './freeze/freeze-group';
export { installThawOnSignals, thawAllFrozen, frozenCount, leftStopped, registerFrozen, unregisterFrozen, type Thawable } from './freeze/thaw-registry';
export { allThreadsStopped } from './freeze/signal-freezer';
export { thawAbandonedFreezes, freezeLockDir, type AbandonedFreeze } from './freeze/freeze-lock';

export { PageHashTable, PageHashTableBuilder, HashCursor } from './dirty/page-hash-table';
export {
  detectSoftDirty,
  detectSoftDirtyDetailed,
  clearSoftDirty,
  type SoftDirtySupport,
} from './dirty/soft-dirty';

export { parseMaps, parseSmaps, parseMapsLine, type MapsEntry } from './procfs/maps';
export { classifyVma, type VmaClass, type ClassifyOptions } from './procfs/classify';
export { MappedFileCheck, isMappedFile, mapsDev } from './procfs/file-identity';
export { parseStatus, parseStatState, parseCmdline } from './procfs/proc-files';
export { processTree, cgroupDirOf, cgroupPids, cgroup2Mount, cgroupUnderMount, readThreadStates } from './procfs/process-tree';
export * from './pagemap/pagemap-bits';
export { PagemapReader } from './pagemap/pagemap-reader';
export type { PageHashKind } from '@pagevault/hashing';
