import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import type { PageRun, SnapshotBegin, VmaHeader } from '@pagevault/format';
import { FilePageReader } from './file-pages';
import { emptyCounts, type CommonOutputOptions, type OutputStats } from './output-types';
import { LivePageWriter } from './live-page-writer';
import { coverage, readTargetMaps, type TargetMapping } from './proc-maps';
import { IOV_MAX, RemoteMemory, type Access } from './remote-memory';
import { walkSnapshot, type SnapshotInput } from './snapshot-walk';
import { hasContents } from './vma-util';

export interface LiveProcessOptions extends CommonOutputOptions {
  /**
   * 'write' (default): fill file-run pages from their file (see fileRoot) like data pages. 'skip': leave
   * them to the target, which maps the same file at the same offset and so already has them.
   */
  filePages?: 'write' | 'skip';
  /** Pages per process_vm_writev/readv call, at most IOV_MAX (1024). Default 256 (1 MiB of 4 KiB pages). */
  batchPages?: number;
}

export interface LiveProcessStats extends OutputStats {
  /** Pages read back after writing and found equal (data, file and zeroed pages). */
  verifiedPages: number;
  /** Zero-run pages the target had non-zero, so they were written; the rest were already zero. */
  zeroPagesWritten: number;
  fileSkipped: number;
  /** process_vm_writev/readv calls and /proc/PID/mem accesses. */
  syscalls: number;
}

/**
 * Writes a full snapshot's pages into a live process prepared with the same layout: every VMA with
 * contents must already be mapped at the same addresses in `pid` (checked against /proc/PID/maps, else
 * PvError INVALID_ARGUMENT naming the missing range; VMAs arrive in stream order, so VMAs before it may have
 * been written already). Data pages are written in batches and read back and compared, batch by batch (a
 * mismatch is a PvError PAGE_HASH_MISMATCH naming the address). Zero runs are read first and only the
 * pages that are not already zero are written, so untouched target memory is not made resident. The
 * target should be stopped (SIGSTOP, cgroup freezer) for the whole call: a running target may change a
 * page between the write and its check. Needs CAP_SYS_PTRACE over the target.
 */
export async function writeLiveProcess(frames: SnapshotInput, pid: number, opts: LiveProcessOptions = {}): Promise<LiveProcessStats> {
  const t0 = performance.now();
  const batchPages = opts.batchPages ?? 256;
  if (!Number.isInteger(batchPages) || batchPages < 1 || batchPages > IOV_MAX) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `batchPages must be 1..${IOV_MAX}, got ${batchPages}`);
  }
  const maps = await readTargetMaps(pid);
  const stats = { bytesWritten: 0, pages: emptyCounts(), vmas: 0, verifiedPages: 0, zeroPagesWritten: 0, fileSkipped: 0, syscalls: 0 };
  let mem: RemoteMemory | undefined;
  let files: FilePageReader | undefined;
  let w: LivePageWriter | undefined;
  let access: Access = 'vm';
  try {
    await walkSnapshot(
      frames,
      {
        begin: (b: SnapshotBegin) => {
          mem = new RemoteMemory(pid, batchPages * b.pageSize);
          files = new FilePageReader(b.pageSize, opts.fileRoot, batchPages * b.pageSize);
          w = new LivePageWriter(mem, b.pageSize, batchPages, stats);
        },
        vmaBegin: (v: VmaHeader) => {
          stats.vmas++;
          if (hasContents(v)) access = checkTarget(maps, pid, v);
        },
        pages: (_v, addresses, data) => {
          w!.pages(access, addresses, data);
          stats.pages.data += addresses.length;
        },
        zeroRuns: (_v, runs: PageRun[]) => {
          for (const r of runs) {
            w!.zeroRun(access, r);
            stats.pages.zero += r.pages;
          }
        },
        fileRuns: async (v, runs) => {
          if (opts.filePages === 'skip') {
            stats.fileSkipped += runs.reduce((n, r) => n + r.pages, 0);
            return;
          }
          const got = await files!.fill(v, runs, (addr, data, n) => w!.contiguous(access, addr, data, n));
          stats.pages.file += got.file;
          stats.pages.fileMissing += got.fileMissing;
        },
      },
      opts.validate ?? true,
    );
  } finally {
    await files?.close();
    stats.syscalls = mem?.syscalls ?? 0;
    mem?.close();
  }
  return { ...stats, elapsedMs: performance.now() - t0 };
}

/** The access path for a VMA, after checking that the target maps all of it. */
function checkTarget(maps: TargetMapping[], pid: number, v: VmaHeader): Access {
  const c = coverage(maps, v.start, v.end);
  if (c.missing) {
    const range = `${hex(c.missing.start)}-${hex(c.missing.end)}`;
    throw new PvError(
      ErrorCodes.INVALID_ARGUMENT,
      `process ${pid} does not map ${range} of VMA ${v.index} ${hex(v.start)}-${hex(v.end)} ${v.path}`.trimEnd(),
      { details: { pid, missing: range, vma: v.index } },
    );
  }
  return c.readWrite ? 'vm' : 'mem';
}
