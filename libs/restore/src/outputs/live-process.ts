import { PagemapReader, freezeProcesses, type FreezeOptions } from '@pagevault/capture';
import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { VmaFlag, VmaKind, type PageRun, type SnapshotBegin, type VmaHeader } from '@pagevault/format';
import { FilePageReader } from './file-pages';
import { emptyCounts, type CommonOutputOptions, type OutputStats } from './output-types';
import { LivePageWriter } from './live-page-writer';
import { coverage, readTargetMaps, sameBacking, type TargetMapping } from './proc-maps';
import { IOV_MAX, RemoteMemory, type Access } from './remote-memory';
import { walkSnapshot, type SnapshotInput } from './snapshot-walk';
import { AccountedRuns, targetCopies } from './target-copies';
import { hasContents, mapsFile } from './vma-util';

export interface LiveProcessOptions extends CommonOutputOptions {
  /**
   * 'write' (default): fill file-run pages from their file (see fileRoot) like data pages. 'skip': leave
   * them to the target, which maps the same file at the same offset and so already has them.
   */
  filePages?: 'write' | 'skip';
  /** Pages per process_vm_writev/readv call, at most IOV_MAX (1024). Default 256 (1 MiB of 4 KiB pages). */
  batchPages?: number;
  /**
   * Freeze the target for the writes and their checks, as a capture does (its cgroup, else SIGSTOP;
   * thawed on return, on error and when this process dies of a signal; a target that was stopped already
   * stays stopped). Default true; false when the caller keeps the target stopped itself.
   */
  freeze?: boolean | FreezeOptions;
  /**
   * The snapshot's VMAs (its manifest's list). Checked against the target's maps before the first write,
   * so a target that does not map one is refused untouched; without it each VMA is checked as it comes,
   * and the VMAs before a missing one have been written already.
   */
  layout?: readonly VmaHeader[];
}

export interface LiveProcessStats extends OutputStats {
  /** Pages read back after writing and found equal (data, file and zeroed pages). */
  verifiedPages: number;
  /** Zero-run pages the target had non-zero, so they were written; the rest were already zero. */
  zeroPagesWritten: number;
  /** File-run pages not written: the target maps the same file and has no copy of its own (or filePages 'skip'). */
  fileSkipped: number;
  /**
   * Pages of shared file mappings not written: they are the file itself (writing them would write the
   * file, or fail on a read-only mapping), shared with whoever else maps it, as a checkpoint/restore
   * tool leaves them (CRIU maps the file again and copies nothing).
   */
  sharedFileSkipped: number;
  /**
   * Pages the snapshot's process had never touched (zero, or its file's bytes) of which the target held
   * a copy of its own: read, and zeroed or refilled from the file where they differed.
   */
  untouchedChecked: number;
  /** process_vm_writev/readv calls and /proc/PID/mem accesses. */
  syscalls: number;
  /** How long the target was frozen by this call (0 when it was not: already stopped, or freeze false). */
  frozenMs: number;
}

/**
 * Writes a full snapshot's pages into a live process prepared with the same layout: every VMA with
 * contents must already be mapped at the same addresses in `pid` (checked against /proc/PID/maps, else
 * PvError TARGET_MISMATCH naming the missing range: for all VMAs before any write when `layout` is given,
 * otherwise as each VMA comes). Data pages are written in batches and read back and compared, batch by batch (a
 * mismatch is a PvError PAGE_HASH_MISMATCH naming the address). Zero runs are read first and only the
 * pages that are not already zero are written, so untouched target memory is not made resident. Pages
 * the snapshot's process had never touched are zero (or the file's bytes, in a private file mapping) and
 * are set the same way, so a process rolled back to its own snapshot ends equal to it too. Where the
 * target maps a VMA with the same backing (same file and offset, or anonymous memory), only the pages it
 * holds a copy of (its pagemap says which) can differ and are checked, file runs included: its other
 * pages of the file stay page cache. Shared mappings' untouched pages are left to their other users,
 * and a shared file mapping's pages are not written at all (they are the file; see sharedFileSkipped). The
 * target is frozen for the whole call (see `freeze`): running, it could change a page between the write
 * and its check, or run on half restored. Needs CAP_SYS_PTRACE over the target.
 */
export async function writeLiveProcess(frames: SnapshotInput, pid: number, opts: LiveProcessOptions = {}): Promise<LiveProcessStats> {
  const batchPages = opts.batchPages ?? 256;
  if (!Number.isInteger(batchPages) || batchPages < 1 || batchPages > IOV_MAX) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `batchPages must be 1..${IOV_MAX}, got ${batchPages}`);
  }
  if (opts.freeze === false) return writeStopped(frames, pid, opts, batchPages);
  const frozen = await freezeProcesses([pid], opts.freeze === true || opts.freeze === undefined ? {} : opts.freeze);
  let writing = false;
  try {
    // Once the first page may be written, whatever ends the restore (an error, this process dying of a
    // signal) leaves the target stopped: running half restored, it would compute on a mix of two states.
    const stats = await writeStopped(frames, pid, opts, batchPages, () => {
      writing = true;
      frozen.stopInsteadOfThaw(true);
    });
    frozen.stopInsteadOfThaw(false);
    return { ...stats, frozenMs: frozen.how.get(pid) === 'already-stopped' ? 0 : performance.now() - frozen.frozenAt };
  } catch (e) {
    if (!writing) throw e;
    const pv = e instanceof PvError ? e : new PvError(ErrorCodes.STORE_UNAVAILABLE, String(e), { cause: e });
    throw new PvError(pv.code, `${pv.message}; process ${pid} is left stopped, part restored: restore it again, or kill it`, { cause: e, retriable: pv.retriable, details: { ...pv.details, pid, leftStopped: true } });
  } finally {
    frozen.thaw();
  }
}

async function writeStopped(frames: SnapshotInput, pid: number, opts: LiveProcessOptions, batchPages: number, writing = () => undefined as void): Promise<LiveProcessStats> {
  const t0 = performance.now();
  const maps = await readTargetMaps(pid);
  for (const v of opts.layout ?? []) if (hasContents(v)) checkTarget(maps, pid, v);
  const stats = { bytesWritten: 0, pages: emptyCounts(), vmas: 0, verifiedPages: 0, zeroPagesWritten: 0, fileSkipped: 0, sharedFileSkipped: 0, untouchedChecked: 0, syscalls: 0 };
  let mem: RemoteMemory | undefined;
  let files: FilePageReader | undefined;
  let w: LivePageWriter | undefined;
  let pm: PagemapReader | undefined;
  let pageSize = 0;
  let access: Access = 'vm';
  /** The pages of the current VMA the stream accounts for; undefined for VMAs whose untouched pages are left alone. */
  let accounted: AccountedRuns | undefined;
  /** The target maps the current VMA as the snapshot's process did: its own untouched pages read right. */
  let same = false;
  /** The current VMA is a shared file mapping: its pages are the file's, and left to it. */
  let sharedFile = false;
  const fill = (v: VmaHeader, runs: PageRun[], required = true) => files!.fill(v, runs, (addr, data, n) => w!.contiguous(access, addr, data, n), required);
  try {
    await walkSnapshot(
      frames,
      {
        begin: (b: SnapshotBegin) => {
          mem = new RemoteMemory(pid, batchPages * b.pageSize, writing);
          files = new FilePageReader(b, opts, batchPages * b.pageSize);
          w = new LivePageWriter(mem, b.pageSize, batchPages, stats);
          pm = new PagemapReader(pid, b.pageSize, 8192);
          pageSize = b.pageSize;
        },
        vmaBegin: (v: VmaHeader) => {
          stats.vmas++;
          accounted = undefined;
          if (!hasContents(v)) return;
          access = checkTarget(maps, pid, v);
          sharedFile = v.kind === VmaKind.SharedFile;
          const file = mapsFile(v);
          // On the snapshot's host a file at the same path may still be another one (replaced since):
          // then the target's pages of it are not the snapshot's, and all are filled (and checked).
          same = sameBacking(maps, v.start, v.end, file ? v.path : '', v.pgoff, file && files!.checksIdentity ? v : undefined);
          if ((v.flags & VmaFlag.Shared) === 0 && !(file && opts.filePages === 'skip')) accounted = new AccountedRuns(pageSize);
        },
        pages: (_v, addresses, data) => {
          if (sharedFile) return void (stats.sharedFileSkipped += addresses.length);
          w!.pages(access, addresses, data);
          stats.pages.data += addresses.length;
          accounted?.addAll(addresses);
        },
        zeroRuns: (_v, runs: PageRun[]) => {
          if (sharedFile) return void (stats.sharedFileSkipped += pagesIn(runs));
          for (const r of runs) {
            w!.zeroRun(access, r);
            stats.pages.zero += r.pages;
            accounted?.add(r.start, r.pages);
          }
        },
        fileRuns: async (v, runs) => {
          if (sharedFile) return void (stats.sharedFileSkipped += pagesIn(runs));
          for (const r of runs) accounted?.add(r.start, r.pages);
          if (opts.filePages === 'skip') {
            stats.fileSkipped += pagesIn(runs);
            return;
          }
          // Where the target maps the same file, only its own copies of these pages can differ from it:
          // writing the others would only turn its page cache into anonymous copies.
          const copies = same ? targetCopies(pm!, runs, pageSize, true) : runs;
          stats.fileSkipped += pagesIn(runs) - pagesIn(copies);
          const got = await fill(v, copies);
          stats.pages.file += got.file;
          stats.pages.fileMissing += got.fileMissing;
        },
        vmaEnd: async (v) => {
          if (!accounted) return;
          const file = mapsFile(v);
          const gaps = accounted.gaps(v.start, v.end);
          const copies = same ? targetCopies(pm!, gaps, pageSize, file) : gaps;
          accounted = undefined;
          stats.untouchedChecked += pagesIn(copies);
          // A page past the end of the file is left: the process could not have read it either.
          if (file) await fill(v, copies, false);
          else for (const r of copies) w!.zeroRun(access, r);
        },
      },
      opts.validate ?? true,
    );
  } finally {
    await files?.close();
    pm?.close();
    stats.syscalls = mem?.syscalls ?? 0;
    mem?.close();
  }
  return { ...stats, missingFiles: files?.missing ?? [], frozenMs: 0, elapsedMs: performance.now() - t0 };
}

const pagesIn = (runs: PageRun[]) => runs.reduce((n, r) => n + r.pages, 0);

/** The access path for a VMA, after checking that the target maps all of it. */
function checkTarget(maps: TargetMapping[], pid: number, v: VmaHeader): Access {
  const c = coverage(maps, v.start, v.end);
  if (c.missing) {
    const range = `${hex(c.missing.start)}-${hex(c.missing.end)}`;
    throw new PvError(
      ErrorCodes.TARGET_MISMATCH,
      `process ${pid} does not map ${range} of VMA ${v.index} ${hex(v.start)}-${hex(v.end)} ${v.path}: not prepared with the snapshot's layout`.trimEnd(),
      { details: { pid, missing: range, vma: v.index } },
    );
  }
  return c.readWrite ? 'vm' : 'mem';
}
