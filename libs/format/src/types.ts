import type { Consistency, FrameType, SnapshotMode, VmaKind } from './constants';

/** Metadata of snapshot-begin. Addresses and counts are JS numbers: page-aligned 64-bit addresses are exact. */
export interface SnapshotBegin {
  pageSize: number;
  pid: number;
  startTimeMs: number;
  /** 16 bytes, or undefined for none. */
  parentId?: Uint8Array;
  /** 16 bytes shared by the snapshots of one consistent group, or undefined. */
  groupId?: Uint8Array;
  mode: SnapshotMode;
  consistency: Consistency;
  tenant: string;
  host: string;
  /** Arguments joined by NUL, as in /proc/PID/cmdline. */
  cmdline: string;
}

export interface VmaHeader {
  index: number;
  start: number;
  end: number;
  prot: number;
  flags: number;
  /** Offset into the mapped file, in bytes. */
  pgoff: number;
  kind: VmaKind;
  dev: string;
  inode: number;
  path: string;
  /** smaps VmFlags, space-separated. */
  vmFlags: string;
  /** Why contents were not read (unsupported VMAs), else ''. */
  reason: string;
  /** Identity of a shared object (e.g. "shmem:<dev>:<inode>") so it is dumped once per snapshot, else ''. */
  sharedKey: string;
}

/** A run of consecutive pages: [start, start + pages * pageSize). */
export interface PageRun {
  start: number;
  pages: number;
}

export interface SnapshotEnd {
  vmaCount: number;
  dataPages: number;
  zeroPages: number;
  filePages: number;
  parentPages: number;
  frameCount: number;
  /** SHA-256 over the headers of every earlier frame of the snapshot, in order (see docs/format.md). */
  digest: Uint8Array;
}

export interface FrameHeader {
  version: number;
  type: FrameType;
  length: number;
  sequence: number;
  snapshotId: Uint8Array;
  crc: number;
}

export type FrameBody =
  | { type: FrameType.SnapshotBegin; begin: SnapshotBegin }
  | { type: FrameType.VmaBegin; vma: VmaHeader }
  | { type: FrameType.PageChunk; pageSize: number; addresses: Float64Array; data: Buffer }
  | { type: FrameType.ZeroRuns | FrameType.FileRuns | FrameType.ParentRuns; runs: PageRun[] }
  | { type: FrameType.VmaEnd; index: number }
  | { type: FrameType.SnapshotEnd; end: SnapshotEnd }
  | { type: FrameType.Abort; code: string; message: string };

export type Frame = FrameHeader & { body: FrameBody; /** the whole frame's bytes */ raw: Buffer };
