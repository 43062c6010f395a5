import { ErrorCodes, PvError } from '@pagevault/errors';
import { Consistency, type SnapshotEnd, type SnapshotWriter } from '@pagevault/format';
import { pageHasher, type PageHashKind } from '@pagevault/hashing';
import type { PageHashTable } from '../dirty/page-hash-table';
import type { FreezeOptions } from '../freeze/freeze-group';

/** The snapshot an incremental is taken against: its id and the page hashes kept from capturing it. */
export interface CaptureParent {
  id: Uint8Array;
  hashes: PageHashTable;
}

export type ChangeDetection = 'auto' | 'hash' | 'soft-dirty';

export interface CaptureOptions {
  pid: number;
  /** Constructed by the caller with its emit callback and snapshot id; capture begins, fills and ends it. */
  writer: SnapshotWriter;
  /** Awaited after each batch of pages: backpressure from the frame sink. */
  drain?: () => Promise<void>;
  /** Frozen (default), Live (no freeze, fuzzy), or PreCopy (the frozen last round of preCopy). */
  consistency?: Consistency;
  tenant: string;
  host: string;
  /** Recorded in snapshot-begin; default Date.now() at the start. */
  startTimeMs?: number;
  /** Makes this an incremental snapshot: unchanged pages become same-as-parent runs. */
  parent?: CaptureParent;
  /** Shared by the snapshots of one consistent group (captureGroup). */
  groupId?: Uint8Array;
  /** Pages per read batch: the size of the one read buffer (default 1024 = 4 MiB at 4 KiB pages, IOV_MAX runs). */
  batchPages?: number;
  /** Pagemap entries per pread (default 64 Ki = 512 KiB of buffer). */
  pagemapEntries?: number;
  /** Read through /proc/PID/mem instead of process_vm_readv. */
  useProcMem?: boolean;
  signal?: AbortSignal;
  /** Return the page hashes of this snapshot, to be the parent of the next incremental. */
  wantHashes?: boolean;
  /** 'auto' (default): soft-dirty bits when the kernel has them and the parent cleared them, else hashes. */
  changeDetection?: ChangeDetection;
  /**
   * The hash the returned table holds when there is no parent (with a parent: the parent table's kind,
   * the only one its hashes compare with). Default 'xxh3-128' (change detection only, keyed by this
   * process's secret, ~6× cheaper than SHA-256; needs the native library), else 'sha256'.
   */
  changeHash?: PageHashKind;
  freeze?: FreezeOptions;
  /** Skip VMAs marked MADV_DONTDUMP (as unsupported). Default false: a restore needs them. */
  respectDontDump?: boolean;
}

export interface CaptureStats {
  pid: number;
  vmas: number;
  /** Pagemap entries examined (pages of address space in VMAs with contents). */
  pagesScanned: number;
  dataPages: number;
  zeroPages: number;
  filePages: number;
  parentPages: number;
  /** Pages never touched (neither present nor swapped): nothing to save. */
  skippedUntouched: number;
  /** Pages not captured, by reason: the VMA's reason (unsupported, vdso...), "shared-elsewhere", "vanished"... */
  skippedByReason: Record<string, number>;
  bytesRead: number;
  /**
   * Private pages that were not exclusively mapped (shared copy-on-write with a forked process, or KSM),
   * read through /proc/PID/mem so that reading them does not copy them in the target.
   */
  nonExclusivePages: number;
  /** Time spent in read calls (process_vm_readv or /proc/PID/mem). */
  readMs: number;
  /** How long the target stayed frozen (the downtime); 0 when live. */
  freezeMs: number;
  /** The whole capture, from the call to its return (freezing and thawing included). */
  totalMs: number;
  readCalls: number;
  frames: number;
  changeDetection: 'none' | 'hash' | 'soft-dirty';
}

export interface CaptureResult {
  stats: CaptureStats;
  end: SnapshotEnd;
  /** Present when wantHashes was set. */
  hashes?: PageHashTable;
}

export const DEFAULT_BATCH_PAGES = 1024;

/** Validates options once at the edge of the library. */
export function checkOptions(o: CaptureOptions): void {
  const bad = (m: string): never => {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `captureSnapshot: ${m}`);
  };
  if (!Number.isInteger(o.pid) || o.pid <= 0) bad(`pid must be a positive integer, got ${o.pid}`);
  if (!o.writer) bad('a writer is required');
  const bp = o.batchPages ?? DEFAULT_BATCH_PAGES;
  if (!Number.isInteger(bp) || bp < 1 || bp > 65536) bad(`batchPages must be 1..65536, got ${bp}`);
  const pe = o.pagemapEntries ?? 1;
  if (!Number.isInteger(pe) || pe < 1 || pe > 1 << 20) bad(`pagemapEntries must be 1..1048576, got ${pe}`);
  if (o.consistency !== undefined && !(o.consistency in Consistency))
    bad(`unknown consistency ${o.consistency}`);
  if (o.parent && o.parent.hashes.pid !== o.pid)
    bad(`parent hashes belong to pid ${o.parent.hashes.pid}, not ${o.pid}`);
  if (o.changeHash !== undefined && o.changeHash !== 'sha256' && o.changeHash !== 'xxh3-128')
    bad(`changeHash must be sha256 or xxh3-128, got ${String(o.changeHash)}`);
  if (o.changeHash === 'xxh3-128' && !pageHasher().supports('xxh3-128'))
    bad('changeHash xxh3-128 needs the native hashing library (libs/hashing/scripts/build-native.cjs)');
}

/** The hash a capture's page table holds: the parent's kind, else the option, else XXH3 where available. */
export function changeHashOf(o: CaptureOptions): PageHashKind {
  if (o.parent) return o.parent.hashes.kind;
  return o.changeHash ?? (pageHasher().supports('xxh3-128') ? 'xxh3-128' : 'sha256');
}

export function emptyStats(pid: number): CaptureStats {
  return {
    pid,
    vmas: 0,
    pagesScanned: 0,
    dataPages: 0,
    zeroPages: 0,
    filePages: 0,
    parentPages: 0,
    skippedUntouched: 0,
    skippedByReason: {},
    bytesRead: 0,
    nonExclusivePages: 0,
    readMs: 0,
    freezeMs: 0,
    totalMs: 0,
    readCalls: 0,
    frames: 0,
    changeDetection: 'none',
  };
}

export function addSkipped(s: CaptureStats, reason: string, pages: number): void {
  s.skippedByReason[reason] = (s.skippedByReason[reason] ?? 0) + pages;
}
