import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { VmaFlag, type PageRun, type SnapshotBegin, type VmaHeader } from '@pagevault/format';
import { atomicFile } from './atomic-output';
import {
  ELF, alignUp, encodeElfHeader, encodeExtnumSection, encodeProgramHeaders, segmentFlags, type ProgramHeader,
} from './elf-layout';
import { rebuildAuxv } from './elf-auxv';
import { coreNotes } from './elf-notes';
import { FilePageReader } from './file-pages';
import { emptyCounts, type FileOutputOptions, type OutputStats } from './output-types';
import { walkSnapshot, type SnapshotInput } from './snapshot-walk';
import { openOutputFile, type OutputFile } from './output-file';
import { writeChunkAt } from './sparse-writes';
import { AccountedRuns } from './target-copies';
import { UntouchedPages } from './untouched-pages';
import { hasContents, mapsFile } from './vma-util';

/**
 * A core fills the untouched pages of file-backed VMAs from their files (`fillUntouchedFromFile`, true
 * by default for a core, unlike raw images): gdb believes a segment's bytes, and would read the code of
 * a library the process never ran as zeros. The core then also gets an NT_AUXV rebuilt from
 * the executable's ELF header (elf-auxv.ts), so gdb relocates a PIE executable, loads the shared
 * libraries and resolves symbols. Both are left out with `fillUntouchedFromFile: false`: gdb's
 * thread-library probe over the zeros of such a core was seen to spin forever.
 */
export type ElfCoreOptions = FileOutputOptions;

export interface ElfCoreStats extends OutputStats {
  /** Pages copied into the segment of a VMA that maps a shared object dumped under an earlier VMA. */
  sharedCopied: number;
  /** PT_LOAD segments (one per VMA). */
  segments: number;
  /** Apparent size of the core file; the disk it takes is about bytesWritten (the rest are holes). */
  fileSize: number;
}

/**
 * Writes a full snapshot as an x86_64 ELF core file (ET_CORE) that gdb opens. Layout, in file order:
 * the ELF header, then one page-aligned PT_LOAD body per VMA with contents (data pages at their offsets,
 * file pages filled from the file when readable, zero and untouched pages left as holes), then the
 * PT_NOTE body (PRSTATUS, PRPSINFO, AUXV, FILE), then the program headers. The headers come last because the
 * VMA count is known only at the end of the stream; e_phoff may point anywhere (gABI). VMAs without
 * contents (vvar, unsupported, or dumped under another VMA) get a PT_LOAD with p_filesz 0.
 * Written to a fresh `path.partial-<random>` and renamed at the end. Memory: the program headers and the file VMAs.
 */
export async function writeElfCore(frames: SnapshotInput, path: string, opts: ElfCoreOptions = {}): Promise<ElfCoreStats> {
  const t0 = performance.now();
  const fsync = opts.fsync ?? true;
  return atomicFile(path, fsync, async (tmp) => {
    const fh = await openOutputFile(tmp, { fsync, flags: 'wx+', direct: opts.directIo }); // read back too: see rebuildAuxv
    const w = new ElfCoreWriter(fh, opts);
    try {
      await walkSnapshot(frames, w, opts.validate ?? true);
      await w.finish();
      await fh.finish();
    } catch (e) {
      await fh.abandon();
      throw e;
    } finally {
      await w.files?.close();
    }
    return { ...w.stats, missingFiles: w.files?.missing ?? [], segments: w.loads.length, fileSize: w.fileSize, elapsedMs: performance.now() - t0 };
  }, opts.replace);
}

/** A segment of this core holding [pgoff, pgoff + len) of a shared object, and the runs written into it. */
interface SharedSegment {
  pgoff: number;
  len: number;
  offset: number;
  /** Pages written (data, file), by address: only they are copied, the rest being holes. */
  written: AccountedRuns;
  vaddr: number;
}

class ElfCoreWriter {
  readonly stats = { bytesWritten: 0, pages: emptyCounts(), vmas: 0, sharedCopied: 0 };
  readonly loads: ProgramHeader[] = [];
  files: FilePageReader | undefined;
  fileSize = 0;
  private head!: SnapshotBegin;
  private next = 0;
  private readonly fileVmas: VmaHeader[] = [];
  private untouched: UntouchedPages | undefined;
  /** Where each shared object's dumped ranges are in this core, by sharedKey. */
  private readonly sharedSegments = new Map<string, SharedSegment[]>();
  /** The segments the current VMA (shared elsewhere) is copied from. */
  private copyFrom: SharedSegment[] | undefined;
  /** The pages written into the current VMA's segment, when it holds a shared object others may copy. */
  private written: AccountedRuns | undefined;

  private readonly fill: boolean;

  constructor(
    private readonly fh: OutputFile,
    private readonly opts: ElfCoreOptions,
  ) {
    this.fill = opts.fillUntouchedFromFile ?? true;
  }

  begin(b: SnapshotBegin): void {
    this.head = b;
    this.files = new FilePageReader(b, this.opts);
    this.next = alignUp(ELF.EHDR_BYTES, b.pageSize);
  }

  vmaBegin(v: VmaHeader): void {
    const len = v.end - v.start;
    // A second mapping of a shared object dumped under an earlier VMA carries no pages in the stream, but
    // gdb reads a core's memory by address: it gets a copy of what the earlier segment holds.
    const copyOf = v.flags & VmaFlag.SharedElsewhere ? this.sharedSegments.get(v.sharedKey) : undefined;
    const filesz = hasContents(v) || copyOf ? len : 0;
    this.written = undefined;
    if (hasContents(v) && v.sharedKey) {
      const seg = { pgoff: v.pgoff, len, offset: this.next, written: new AccountedRuns(this.head.pageSize), vaddr: v.start };
      this.sharedSegments.set(v.sharedKey, [...(this.sharedSegments.get(v.sharedKey) ?? []), seg]);
      this.written = seg.written;
    }
    this.copyFrom = copyOf;
    this.loads.push({ type: ELF.PT_LOAD, flags: segmentFlags(v.prot), offset: this.next, vaddr: v.start, filesz, memsz: len, align: this.head.pageSize });
    this.next += filesz;
    if (mapsFile(v)) this.fileVmas.push(v);
    if (this.fill && mapsFile(v) && filesz > 0) this.untouched = new UntouchedPages(v, this.head.pageSize);
    this.stats.vmas++;
  }

  async pages(v: VmaHeader, addresses: Float64Array, data: Buffer): Promise<void> {
    const base = this.segmentOffset(v);
    this.stats.bytesWritten += await writeChunkAt(this.fh, addresses, data, this.head.pageSize, (a) => base + (a - v.start));
    this.stats.pages.data += addresses.length;
    this.untouched?.markAll(addresses);
    this.written?.addAll(addresses);
  }

  zeroRuns(_v: VmaHeader, runs: PageRun[]): void {
    for (const r of runs) {
      this.stats.pages.zero += r.pages;
      this.untouched?.mark(r.start, r.pages);
    }
  }

  async fileRuns(v: VmaHeader, runs: PageRun[]): Promise<void> {
    for (const r of runs) this.untouched?.mark(r.start, r.pages);
    const got = await this.fillFromFile(v, runs);
    this.stats.pages.file += got.file;
    this.stats.pages.fileMissing += got.fileMissing;
  }

  async vmaEnd(v: VmaHeader): Promise<void> {
    if (this.copyFrom) await this.copyShared(v, this.copyFrom);
    this.copyFrom = undefined;
    if (!this.untouched) return;
    const runs = this.untouched.runs();
    this.untouched = undefined;
    // Pages past the end of the file stay holes: the process could not have read them either.
    this.stats.pages.file += (await this.fillFromFile(v, runs, false)).file;
  }

  /**
   * Copies into the segment of `v` (shared elsewhere) what `from`'s segments hold of the same object
   * offsets: only the runs written there (the rest are holes, and stay holes), one batch (1 MiB) at a time.
   */
  private async copyShared(v: VmaHeader, from: SharedSegment[]): Promise<void> {
    const ps = this.head.pageSize;
    const to = this.segmentOffset(v);
    const buf = Buffer.alloc(1024 * 1024);
    for (const src of from) {
      for (const r of src.written.runs()) {
        const lo = Math.max(src.pgoff + (r.start - src.vaddr), v.pgoff);
        const hi = Math.min(src.pgoff + (r.start - src.vaddr) + r.pages * ps, v.pgoff + (v.end - v.start));
        for (let o = lo; o < hi; o += buf.length) {
          const n = await this.fh.read(buf.subarray(0, Math.min(buf.length, hi - o)), src.offset + (o - src.pgoff));
          this.stats.bytesWritten += await this.fh.write(buf.subarray(0, n), to + (o - v.pgoff));
          this.stats.sharedCopied += Math.ceil(n / ps);
        }
      }
    }
  }

  private fillFromFile(v: VmaHeader, runs: PageRun[], required = true): Promise<{ file: number; fileMissing: number }> {
    const base = this.segmentOffset(v);
    return this.files!.fill(v, runs, async (addr, data, n) => {
      this.stats.bytesWritten += await this.fh.write(data, base + (addr - v.start));
      this.written?.add(addr, n);
    }, required);
  }

  /** Notes, program headers (and the extended-numbering section header), then the ELF header. */
  async finish(): Promise<void> {
    const argv0 = this.head.cmdline.split('\0')[0] ?? '';
    const auxv = this.fill ? await rebuildAuxv(this.fileVmas, argv0, this.head.pageSize, (a, len) => this.readBack(a, len)) : undefined;
    const notes = coreNotes(this.head, this.fileVmas, auxv);
    const notesAt = this.next;
    const phdrs = [{ type: ELF.PT_NOTE, flags: 0, offset: notesAt, vaddr: 0, filesz: notes.length, memsz: 0, align: 4 }, ...this.loads];
    const phoff = alignUp(notesAt + notes.length, 8);
    const table = encodeProgramHeaders(phdrs);
    const shoff = phoff + table.length;
    const tail = [notes, Buffer.alloc(phoff - notesAt - notes.length), table];
    if (phdrs.length >= ELF.PN_XNUM) tail.push(encodeExtnumSection(phdrs.length));
    const body = Buffer.concat(tail);
    this.stats.bytesWritten += await this.fh.write(body, notesAt);
    this.stats.bytesWritten += await this.fh.write(encodeElfHeader(phoff, phdrs.length, shoff), 0);
    this.fileSize = notesAt + body.length;
  }

  /** Reads back what this core holds at [vaddr, vaddr + len) (holes read as zeros). */
  private async readBack(vaddr: number, len: number): Promise<Buffer | undefined> {
    const seg = this.loads.find((p) => p.vaddr <= vaddr && vaddr + len <= p.vaddr + p.filesz);
    if (!seg) return undefined;
    const b = Buffer.alloc(len);
    const bytesRead = await this.fh.read(b, seg.offset + (vaddr - seg.vaddr));
    return b.subarray(0, bytesRead);
  }

  /** File offset of the segment of `v`, the VMA opened last. */
  private segmentOffset(v: VmaHeader): number {
    const seg = this.loads[this.loads.length - 1];
    if (!seg || seg.vaddr !== v.start || seg.filesz === 0) {
      throw new PvError(ErrorCodes.STREAM_ORDER, `pages in VMA ${v.index} ${hex(v.start)}-${hex(v.end)}, which carries none`);
    }
    return seg.offset;
  }
}
