import { join } from 'node:path';
import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import type { PageRun, SnapshotBegin, VmaHeader } from '@pagevault/format';
import { atomicDir } from './atomic-output';

import { FilePageReader } from './file-pages';
import { addCounts, emptyCounts, type FileOutputOptions, type OutputStats, type PageCounts } from './output-types';
import { endInfo, imageName, snapshotInfo, vmaEntry, type RawLayout } from './raw-layout';
import { walkSnapshot, type EndInfo, type SnapshotInput } from './snapshot-walk';
import { openOutputFile, type OutputFile } from './output-file';
import { writeChunkAt } from './sparse-writes';
import { syncFiles } from './sync-fs';
import { UntouchedPages } from './untouched-pages';
import { hasContents, mapsFile } from './vma-util';

/** Every raw output holds it: a directory replaced by a raw restore must (anything else is someone's files). */
export const RAW_MARKER = 'layout.json';

export type RawImagesOptions = FileOutputOptions;

export interface RawImagesStats extends OutputStats {
  /** Image files written (VMAs with contents). */
  images: number;
  layout: RawLayout;
}

/**
 * Writes a full snapshot as raw memory images into `dir`: per VMA with contents a sparse file
 * `vma-<index>-<start>-<end>.img` as long as the VMA, the byte at offset o being the byte at address
 * start + o (data pages written, file pages filled from the file when readable, zero and untouched pages
 * left as holes), and `layout.json` describing the snapshot and every VMA. Everything is written into a
 * temporary sibling directory renamed to `dir` last, so `dir` never holds a partial restore.
 * Memory: one open image, one file batch (1 MiB) and the layout's VMA list.
 */
export async function writeRawImages(frames: SnapshotInput, dir: string, opts: RawImagesOptions = {}): Promise<RawImagesStats> {
  const t0 = performance.now();
  const fsync = opts.fsync ?? true;
  return atomicDir(dir, fsync, async (tmp) => {
    const w = new RawWriter(tmp, fsync, opts);
    try {
      await walkSnapshot(frames, w, opts.validate ?? true);
      await w.settle(0);
      await syncFiles(tmp, w.unsynced);
    } finally {
      await w.close();
    }
    const fh = await openOutputFile(join(tmp, RAW_MARKER), { fsync, direct: false });
    await fh.write(Buffer.from(JSON.stringify(w.layout, null, 2) + '\n'), 0).catch(async (e: unknown) => {
      await fh.abandon();
      throw e;
    });
    await fh.finish();
    return { ...w.stats, missingFiles: w.files?.missing ?? [], images: w.images, layout: w.layout, elapsedMs: performance.now() - t0 };
  }, opts.replace, RAW_MARKER);
}

/** Image files being finished (written out, and fsync for large ones) at once. */
const FINISHING = 16;

/** Images of VMAs this long or shorter are written with synchronous calls (OutputFileOptions.small). */
const SMALL_IMAGE_BYTES = 64 << 10;

/** VMAs at least this long are written with O_DIRECT (when fsync and directIo allow). */
const DIRECT_FROM_BYTES = 1 << 20;

class RawWriter {
  layout!: RawLayout;
  images = 0;
  readonly stats = { bytesWritten: 0, pages: emptyCounts(), vmas: 0 };
  private head!: SnapshotBegin;
  files: FilePageReader | undefined;
  private img: OutputFile | undefined;
  private counts: PageCounts = emptyCounts();
  private untouched: UntouchedPages | undefined;
  /**
   * Images written whose fsync runs while the next are written (FINISHING at most): one at a time, a
   * process of thousands of small VMAs spent ~1.3 ms a VMA waiting for its image's fsync.
   */
  private readonly finishing: Promise<void>[] = [];
  /** Small images written through the page cache without an fsync each: synced together at the end (syncFiles). */
  readonly unsynced: string[] = [];

  constructor(
    private readonly dir: string,
    private readonly fsync: boolean,
    private readonly opts: RawImagesOptions,
  ) {}

  begin(b: SnapshotBegin, id: Uint8Array): void {
    this.head = b;
    this.files = new FilePageReader(b, this.opts);
    this.layout = { format: 'pagevault-raw-images', version: 1, snapshot: snapshotInfo(id, b), vmas: [] };
  }

  async vmaBegin(v: VmaHeader): Promise<void> {
    this.counts = emptyCounts();
    if (!hasContents(v)) return;
    if (this.opts.fillUntouchedFromFile && mapsFile(v)) this.untouched = new UntouchedPages(v, this.head.pageSize);
    // A small image goes through the page cache: a direct write waits for the device, and its staging
    // buffers cost more than its pages.
    const large = v.end - v.start >= DIRECT_FROM_BYTES;
    const direct = this.opts.directIo !== false && large;
    // A small image is made durable with the others at the end, not by an fsync of its own.
    const fsync = this.fsync && large;
    this.img = await openOutputFile(join(this.dir, imageName(v)), { fsync, direct, small: v.end - v.start <= SMALL_IMAGE_BYTES });
    if (this.fsync && !large) this.unsynced.push(imageName(v));
    await this.img.truncate(v.end - v.start);
  }

  async pages(v: VmaHeader, addresses: Float64Array, data: Buffer): Promise<void> {
    this.stats.bytesWritten += await writeChunkAt(this.image(v), addresses, data, this.head.pageSize, (a) => a - v.start);
    this.counts.data += addresses.length;
    this.untouched?.markAll(addresses);
  }

  zeroRuns(_v: VmaHeader, runs: PageRun[]): void {
    for (const r of runs) {
      this.counts.zero += r.pages;
      this.untouched?.mark(r.start, r.pages);
    }
  }

  async fileRuns(v: VmaHeader, runs: PageRun[]): Promise<void> {
    for (const r of runs) this.untouched?.mark(r.start, r.pages);
    const got = await this.fillFromFile(v, runs);
    this.counts.file += got.file;
    this.counts.fileMissing += got.fileMissing;
  }

  async vmaEnd(v: VmaHeader): Promise<void> {
    if (this.untouched) {
      // Pages past the end of the file stay untouched: the process could not have read them either.
      this.counts.file += (await this.fillFromFile(v, this.untouched.runs(), false)).file;
      this.untouched = undefined;
    }
    const image = this.img ? imageName(v) : null;
    if (this.img) {
      const img = this.img;
      this.img = undefined;
      await this.settle(FINISHING - 1);
      const done = img.finish();
      done.catch(() => undefined); // awaited by settle; failing meanwhile is not unhandled
      this.finishing.push(done);
      this.images++;
    }
    this.layout.vmas.push(vmaEntry(v, this.head.pageSize, image, this.counts));
    addCounts(this.stats.pages, this.counts);
    this.stats.vmas++;
  }

  end(e: EndInfo): void {
    this.layout.snapshot.end = endInfo(e);
  }

  private fillFromFile(v: VmaHeader, runs: PageRun[], required = true): Promise<{ file: number; fileMissing: number }> {
    const img = this.image(v);
    return this.files!.fill(v, runs, async (addr, data) => {
      this.stats.bytesWritten += await img.write(data, addr - v.start);
    }, required);
  }

  private image(v: VmaHeader): OutputFile {
    if (!this.img) throw new PvError(ErrorCodes.STREAM_ORDER, `pages in VMA ${v.index} ${hex(v.start)}-${hex(v.end)}, which carries none`);
    return this.img;
  }

  /** Waits until at most `keep` images are still being finished; throws what a finish met. */
  async settle(keep: number): Promise<void> {
    while (this.finishing.length > keep) await this.finishing.shift();
  }

  async close(): Promise<void> {
    if (this.img) await this.img.abandon();
    this.img = undefined;
    await Promise.allSettled(this.finishing.splice(0));
    await this.files?.close();
  }
}
