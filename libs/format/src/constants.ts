/** Constants of the pagevault stream format; see docs/format.md for the byte layout. */

/** "PVFR" — the first four bytes of every frame. */
export const MAGIC = Buffer.from('PVFR', 'latin1');
export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 36;
export const SNAPSHOT_ID_BYTES = 16;

/**
 * Default maximum frame size (header + payload): 1 MiB − 4 KiB. Kafka's default max.message.bytes is
 * 1,048,588 for a whole record batch; a one-record batch adds ~61 bytes of batch header and ~60 of record
 * overhead and key, so a frame of this size fits with room to spare. The frame log uses the same value.
 */
export const DEFAULT_MAX_FRAME_BYTES = 1024 * 1024 - 4096;
/** No frame is ever larger than this, whatever a reader is configured with. */
export const ABSOLUTE_MAX_FRAME_BYTES = 64 * 1024 * 1024;

export const MIN_PAGE_SIZE = 4096;
export const MAX_PAGE_SIZE = 65536;

export enum FrameType {
  SnapshotBegin = 1,
  VmaBegin = 2,
  PageChunk = 3,
  ZeroRuns = 4,
  FileRuns = 5,
  ParentRuns = 6,
  VmaEnd = 7,
  SnapshotEnd = 8,
  Abort = 9,
}

export enum VmaKind {
  PrivateAnon = 1,
  PrivateFile = 2,
  SharedAnon = 3,
  SharedFile = 4,
  Heap = 5,
  Stack = 6,
  Vdso = 7,
  Vvar = 8,
  Vsyscall = 9,
  Unsupported = 10,
}

/** Bits of VmaHeader.flags. */
export const VmaFlag = {
  /** MAP_SHARED. */
  Shared: 1 << 0,
  /** Contents were not read (vdso/vvar/vsyscall, or an unsupported VMA: see `reason`). */
  NoContents: 1 << 1,
  /** A shared object already dumped under an earlier VMA with the same sharedKey: no pages follow. */
  SharedElsewhere: 1 << 2,
} as const;

/** PROT_* bits of VmaHeader.prot, as in mman.h. */
export const Prot = { Read: 1, Write: 2, Exec: 4 } as const;

export enum SnapshotMode {
  Full = 0,
  Incremental = 1,
}

export enum Consistency {
  /** All threads frozen for the whole read. */
  Frozen = 0,
  /** Read while running: fuzzy. */
  Live = 1,
  /** Pre-copy rounds while running, final round frozen. */
  PreCopy = 2,
}

export const MAX_STRING_BYTES = 65535;
