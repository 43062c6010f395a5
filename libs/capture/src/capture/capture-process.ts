import { performance } from 'node:perf_hooks';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { Consistency, SnapshotMode, VmaFlag, VmaKind } from '@pagevault/format';
import { HashCursor, PageHashTableBuilder, type PageHashTable } from '../dirty/page-hash-table';
import { mergeHashTables } from '../dirty/merge-hash-tables';
import { clearSoftDirty, detectSoftDirty } from '../dirty/soft-dirty';
import { SoftDirtyMap } from '../dirty/soft-dirty-map';
import { systemPageSize } from '../memory/libc';
import { RemoteReader } from '../memory/remote-reader';
import { PagemapReader, DEFAULT_PAGEMAP_ENTRIES } from '../pagemap/pagemap-reader';
import { classifyVma } from '../procfs/classify';
import { MappedFileCheck } from '../procfs/file-identity';
import { parseSmaps, type MapsEntry } from '../procfs/maps';
import { parseCmdline, readProcText } from '../procfs/proc-files';
import { DEFAULT_BATCH_PAGES, changeHashOf, emptyStats, type CaptureOptions, type CaptureResult } from './options';
import { PageBatch } from './page-batch';
import type { Session } from './session';
import { captureVma } from './vma-capture';

/**
 * Captures one process that is already in the state the consistency asks for (frozen, or running for
 * Live): snapshot-begin, every VMA in address order, snapshot-end. Errors propagate; the caller aborts
 * the writer and thaws.
 */
export async function captureProcess(o: CaptureOptions, consistency: Consistency, beforeEnd?: () => void): Promise<CaptureResult> {
  const t0 = performance.now();
  const pid = o.pid;
  const ps = systemPageSize();
  const stats = emptyStats(pid);
  const cmdline = parseCmdline(readProcText(pid, 'cmdline'));
  const vmas = parseSmaps(readProcText(pid, 'smaps'));
  stats.vmas = vmas.length;
  const pagemap = new PagemapReader(pid, ps, o.pagemapEntries ?? DEFAULT_PAGEMAP_ENTRIES);
  const reader = new RemoteReader(pid, ps, o.batchPages ?? DEFAULT_BATCH_PAGES, {
    useProcMem: o.useProcMem === true,
  });
  try {
    const sd = softDirtyWanted(o);
    const mode = !o.parent ? 'none' : sd && o.parent.hashes.softDirtyCleared ? 'soft-dirty' : 'hash';
    stats.changeDetection = mode;
    const files = new MappedFileCheck();
    const reopens = (e: MapsEntry) => files.isHere(e.path, e.dev, e.inode);
    const classes = vmas.map((e) => classifyVma(e, { respectDontDump: o.respectDontDump === true, reopens }));
    // Save the soft-dirty bits, then clear them, before reading anything (see SoftDirtyMap for why).
    const softDirty =
      mode === 'soft-dirty' ? SoftDirtyMap.scan(pagemap, vmaRanges(vmas, classes), ps) : undefined;
    const cleared = sd && (o.wantHashes === true || mode === 'soft-dirty');
    if (cleared) clearSoftDirty(pid);
    const keepHashes = o.wantHashes === true || mode === 'hash';
    const hashKind = changeHashOf(o);
    const s: Session = {
      pid,
      pageSize: ps,
      writer: o.writer,
      drain: o.drain,
      signal: o.signal,
      stats,
      reader,
      pagemap,
      mode,
      parent: o.parent ? new HashCursor(o.parent.hashes) : undefined,
      softDirty,
      readHashes: keepHashes ? new PageHashTableBuilder(pid, ps, hashKind) : undefined,
      carriedHashes: mode === 'soft-dirty' ? new PageHashTableBuilder(pid, ps, hashKind) : undefined,
    };
    o.writer.begin({
      pageSize: ps,
      pid,
      startTimeMs: o.startTimeMs ?? Date.now(),
      parentId: o.parent?.id,
      groupId: o.groupId,
      mode: o.parent ? SnapshotMode.Incremental : SnapshotMode.Full,
      consistency,
      tenant: o.tenant,
      host: o.host,
      cmdline,
    });
    const batch = new PageBatch(s);
    const through = readaheadEnds(vmas, ps);
    const shared = new SharedRanges();
    for (let i = 0; i < vmas.length; i++) {
      if (classes[i].sharedKey && !(classes[i].flags & VmaFlag.NoContents) && shared.seen(classes[i].sharedKey, vmas[i])) {
        classes[i].flags |= VmaFlag.SharedElsewhere;
      }
    }
    for (let i = 0; i < vmas.length; i++) {
      const e = vmas[i];
      const c = classes[i];
      // A shared file mapped again over the same range: its pages touched only through the other mappings
      // are not in this one's page table, yet are the same memory (shmem objects: shmemExtents).
      const twins = c.kind === VmaKind.SharedFile && !(c.flags & VmaFlag.SharedElsewhere) ? shared.repeatsOf(c.sharedKey, e) : undefined;
      await captureVma(s, batch, i, e, c, twins, through[i]);
    }
    beforeEnd?.(); // still frozen? (FrozenGroup.check): else the stream ends aborted, never complete
    const end = o.writer.end();
    stats.bytesRead = reader.bytesRead;
    stats.readMs = reader.readMs;
    stats.readCalls = reader.calls;
    stats.frames = o.writer.framesWritten;
    stats.totalMs = performance.now() - t0;
    let hashes: PageHashTable | undefined;
    if (o.wantHashes)
      hashes = mergeHashTables(s.readHashes!.build(cleared), s.carriedHashes?.build(cleared), cleared);
    return { stats, end, hashes };
  } finally {
    reader.close();
    pagemap.close();
  }
}

function softDirtyWanted(o: CaptureOptions): boolean {
  if (o.changeDetection === 'hash') return false;
  const supported = detectSoftDirty();
  if (o.changeDetection === 'soft-dirty' && !supported) {
    throw new PvError(
      ErrorCodes.INVALID_ARGUMENT,
      'soft-dirty change detection asked for, but this kernel does not track soft-dirty pages',
    );
  }
  return supported;
}

function vmaRanges(vmas: MapsEntry[], classes: { flags: number }[]): { start: number; end: number }[] {
  // VMAs without contents keep an empty range so indexes still match; pagemap is never read for them.
  return vmas.map((v, i) => (classes[i].flags & VmaFlag.NoContents ? { start: v.start, end: v.start } : v));
}

/** VMAs this many pages apart or closer are read ahead together (glibc's guard pages, alignment holes). */
const READAHEAD_GAP_PAGES = 16;

/**
 * Per VMA, how far its pagemap reads may go ahead: the end of the run of VMAs after it each no more than
 * READAHEAD_GAP_PAGES from the one before. A process with thousands of small VMAs side by side (an
 * allocator's arenas, mprotect'ed pages) then costs one pread per window of pages, not one per VMA;
 * reading the entries of a short gap costs less than a system call.
 */
export function readaheadEnds(vmas: readonly { start: number; end: number }[], pageSize: number): Float64Array {
  const out = new Float64Array(vmas.length);
  for (let i = vmas.length - 1; i >= 0; i--) {
    const next = vmas[i + 1];
    out[i] = next && next.start - vmas[i].end <= READAHEAD_GAP_PAGES * pageSize ? out[i + 1] : vmas[i].end;
  }
  return out;
}

/** The pgoff ranges of each shared object already dumped in this snapshot, and the VMAs that map them again. */
class SharedRanges {
  private readonly repeats = new Map<string, MapsEntry[]>();

  /** True when exactly this range of the object was dumped before (the VMA is recorded as a repeat); records it otherwise. */
  seen(key: string, e: MapsEntry): boolean {
    const r = rangeKey(key, e);
    const list = this.repeats.get(r);
    if (list) list.push(e);
    else this.repeats.set(r, []);
    return list !== undefined;
  }

  /** The later VMAs mapping the same range of the object as `e`. */
  repeatsOf(key: string, e: MapsEntry): MapsEntry[] {
    return this.repeats.get(rangeKey(key, e)) ?? [];
  }
}

function rangeKey(key: string, e: MapsEntry): string {
  return `${key} ${e.offset}+${e.end - e.start}`;
}
