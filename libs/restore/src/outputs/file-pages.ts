import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { PageRun, VmaHeader } from '@pagevault/format';
import type { FileRoot } from './output-types';
import { splitRun } from './page-runs';

/** Receives consecutive pages read from a file; `data` is reused after the returned promise settles. */
export type PageSink = (addr: number, data: Buffer, pages: number) => unknown;

/**
 * Reads the pages of file runs from the mapped file: the page at `addr` of a VMA is at file offset
 * `pgoff + (addr - start)`. Pages past the end of the file (or of an unreadable file) are counted as
 * missing and not delivered; a page the end of file cuts is delivered zero-padded, as the kernel maps it.
 * Memory: one batch buffer (`batchBytes`) and one open file at a time.
 */
export class FilePageReader {
  private readonly buf: Buffer;
  private current: { index: number; fh: FileHandle | undefined; size: number } | undefined;

  constructor(
    private readonly pageSize: number,
    private readonly fileRoot?: FileRoot,
    batchBytes = 1024 * 1024,
  ) {
    this.buf = Buffer.alloc(Math.max(pageSize, Math.floor(batchBytes / pageSize) * pageSize));
  }

  /** Delivers the readable pages of `runs` to `sink`, one read and one sink call per batch. */
  async fill(vma: VmaHeader, runs: PageRun[], sink: PageSink): Promise<{ file: number; fileMissing: number }> {
    const ps = this.pageSize;
    const { fh, size } = await this.fileOf(vma);
    let file = 0;
    let fileMissing = 0;
    for (const r of runs) {
      for (const piece of splitRun(r.start, r.pages, ps, this.buf.length / ps)) {
        const offset = vma.pgoff + (piece.start - vma.start);
        const readable = fh ? Math.min(piece.pages, Math.max(0, Math.ceil((size - offset) / ps))) : 0;
        fileMissing += piece.pages - readable;
        if (readable === 0) continue;
        const want = readable * ps;
        const { bytesRead } = await fh!.read(this.buf, 0, want, offset);
        this.buf.fill(0, bytesRead, want);
        // A file shorter than fstat said (truncated meanwhile): the pages it no longer has are missing.
        const got = Math.ceil(bytesRead / ps);
        fileMissing += readable - got;
        if (got === 0) continue;
        await sink(piece.start, this.buf.subarray(0, got * ps), got);
        file += got;
      }
    }
    return { file, fileMissing };
  }

  async close(): Promise<void> {
    const fh = this.current?.fh;
    this.current = undefined;
    await fh?.close();
  }

  private async fileOf(vma: VmaHeader): Promise<{ fh: FileHandle | undefined; size: number }> {
    if (this.current?.index === vma.index) return this.current;
    await this.close();
    const path = this.resolve(vma);
    let fh: FileHandle | undefined;
    let size = 0;
    if (path) {
      try {
        fh = await open(path, 'r');
        const st = await fh.stat();
        if (st.isFile()) {
          size = st.size;
        } else {
          await fh.close();
          fh = undefined;
        }
      } catch {
        // Unreadable or gone: every page of this VMA's file runs is counted missing.
        await fh?.close().catch(() => undefined);
        fh = undefined;
      }
    }
    this.current = { index: vma.index, fh, size };
    return this.current;
  }

  private resolve(vma: VmaHeader): string | undefined {
    const root = this.fileRoot;
    if (typeof root === 'function') return root(vma);
    if (!vma.path.startsWith('/')) return undefined;
    return root ? join(root, vma.path) : vma.path;
  }
}
