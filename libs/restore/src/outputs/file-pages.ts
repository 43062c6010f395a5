import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { isMappedFile } from '@pagevault/capture';
import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import type { PageRun, SnapshotBegin, VmaHeader } from '@pagevault/format';
import type { CommonOutputOptions, FileRoot, MissingFile } from './output-types';
import { splitRun } from './page-runs';

/** Receives consecutive pages read from a file; `data` is reused after the returned promise settles. */
export type PageSink = (addr: number, data: Buffer, pages: number) => unknown;

/** The file of the current VMA; `problem` says why it gives no pages (fh undefined). */
interface OpenFile {
  index: number;
  fh: FileHandle | undefined;
  size: number;
  path: string;
  problem?: string;
}

/**
 * Reads the pages of file runs from the mapped file: the page at `addr` of a VMA is at file offset
 * `pgoff + (addr - start)`; a page the end of file cuts is delivered zero-padded, as the kernel maps it.
 *
 * A page the stream says is the file's must come from that file. When it cannot — the file is gone or
 * unreadable, not a regular file, too short, or, on the snapshot's own host (its name is this machine's
 * hostname or `localHost`) reading paths as they are, another file than the one mapped (its device and
 * inode differ: replaced by a rename, as a package upgrade does) — the restore fails with PV_FILE_UNAVAILABLE naming it (onMissingFile 'fail', the default), or the page is
 * left out and reported in `missing` ('allow'). Other hosts' inodes say nothing, and a file changed in
 * place keeps its inode: format v1 records no size or mtime to tell (docs/format.md §12).
 * Memory: one batch buffer (`batchBytes`) and one open file at a time.
 */
export class FilePageReader {
  private readonly buf: Buffer;
  private readonly ps: number;
  private current: OpenFile | undefined;
  /** Files are compared with the device and inode their VMA names (the snapshot's host, paths as they are). */
  readonly checksIdentity: boolean;
  private readonly allowMissing: boolean;
  private readonly missingByFile = new Map<string, MissingFile>();

  constructor(
    head: Pick<SnapshotBegin, 'pageSize' | 'host'>,
    private readonly opts: Pick<CommonOutputOptions, 'fileRoot' | 'onMissingFile' | 'localHost'> = {},
    batchBytes = 1024 * 1024,
  ) {
    const ps = (this.ps = head.pageSize);
    this.buf = Buffer.alloc(Math.max(ps, Math.floor(batchBytes / ps) * ps));
    this.checksIdentity = identityCheckable(head, opts);
    this.allowMissing = opts.onMissingFile === 'allow';
  }

  /** Files whose pages were left out (onMissingFile 'allow'), with why and how many. */
  get missing(): MissingFile[] {
    return [...this.missingByFile.values()];
  }

  /**
   * Delivers the pages of `runs` to `sink`, one read and one sink call per batch. `required` false (pages
   * the process never touched, filled only as a courtesy): what the file cannot give is skipped quietly.
   */
  async fill(vma: VmaHeader, runs: PageRun[], sink: PageSink, required = true): Promise<{ file: number; fileMissing: number }> {
    const ps = this.ps;
    let file = 0;
    let fileMissing = 0;
    if (runs.length === 0) return { file, fileMissing };
    const f = await this.fileOf(vma);
    const lost = (addr: number, pages: number, why: string) => {
      if (!required) return;
      this.lose(vma, f.path, addr, pages, why, pagesFrom(runs, addr, ps));
      fileMissing += pages;
    };
    for (const r of runs) {
      for (const piece of splitRun(r.start, r.pages, ps, this.buf.length / ps)) {
        if (!f.fh) {
          lost(piece.start, piece.pages, f.problem!);
          continue;
        }
        const offset = vma.pgoff + (piece.start - vma.start);
        const readable = Math.min(piece.pages, Math.max(0, Math.ceil((f.size - offset) / ps)));
        if (readable < piece.pages) lost(piece.start + readable * ps, piece.pages - readable, `is ${f.size} bytes, shorter than the pages the snapshot maps from it`);
        if (readable === 0) continue;
        const want = readable * ps;
        const { bytesRead } = await f.fh.read(this.buf, 0, want, offset);
        this.buf.fill(0, bytesRead, want);
        // A file shorter than fstat said (truncated meanwhile): the pages it no longer has are missing.
        const got = Math.ceil(bytesRead / ps);
        if (got < readable) lost(piece.start + got * ps, readable - got, 'was truncated while it was read');
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

  /** `pages` from addr are lost; `after`: pages of the VMA's file runs from addr on (for the message). */
  private lose(vma: VmaHeader, path: string, addr: number, pages: number, why: string, after: number): void {
    if (!this.allowMissing) {
      throw new PvError(
        ErrorCodes.FILE_UNAVAILABLE,
        `VMA ${vma.index} ${hex(vma.start)}-${hex(vma.end)} maps ${path}, which ${why}: its page at ${hex(addr)} (and ${after - 1} more taken from the file after it) cannot be restored; --allow-missing-files leaves such pages out (zeros)`,
        { details: { path, vma: vma.index, address: hex(addr), reason: why } },
      );
    }
    const key = `${path}\0${why}`;
    const m = this.missingByFile.get(key) ?? { path, reason: why, pages: 0 };
    m.pages += pages;
    this.missingByFile.set(key, m);
  }

  private async fileOf(vma: VmaHeader): Promise<OpenFile> {
    if (this.current?.index === vma.index) return this.current;
    await this.close();
    this.current = { index: vma.index, ...(await openMappedFile(resolvePath(vma, this.opts.fileRoot), vma, this.checksIdentity)) };
    return this.current;
  }

}

/**
 * Why the file a VMA maps cannot give its pages to a restore here (as FilePageReader would find it), or
 * undefined when it can: what `pagevault verify` reports of each file a snapshot references. `lastPage`:
 * the address of the VMA's last page the snapshot takes from the file, which must still hold a byte of it.
 */
export async function mappedFileProblem(
  vma: VmaHeader,
  head: Pick<SnapshotBegin, 'host' | 'pageSize'>,
  opts: Pick<CommonOutputOptions, 'fileRoot' | 'localHost'> = {},
  lastPage?: number,
): Promise<string | undefined> {
  const f = await openMappedFile(resolvePath(vma, opts.fileRoot), vma, identityCheckable(head, opts));
  await f.fh?.close();
  if (!f.problem && lastPage !== undefined && f.size <= vma.pgoff + (lastPage - vma.start)) {
    return `is ${f.size} bytes, shorter than the pages the snapshot maps from it (${lastPage - vma.start + head.pageSize + vma.pgoff} bytes)`;
  }
  return f.problem;
}

/** On the snapshot's own host, reading paths as they are, a file's device and inode must be the recorded ones. */
function identityCheckable(head: Pick<SnapshotBegin, 'host'>, opts: Pick<CommonOutputOptions, 'fileRoot' | 'localHost'>): boolean {
  return opts.fileRoot === undefined && (head.host === hostname() || head.host === opts.localHost);
}

function resolvePath(vma: VmaHeader, root: FileRoot | undefined): string | undefined {
  if (typeof root === 'function') return root(vma);
  if (!vma.path.startsWith('/')) return undefined;
  return root ? join(root, vma.path) : vma.path;
}

/** Opens the mapped file at `path` for reading, or says why it cannot serve the VMA's pages. */
async function openMappedFile(path: string | undefined, vma: VmaHeader, checkIdentity: boolean): Promise<Omit<OpenFile, 'index'>> {
  const f: Omit<OpenFile, 'index'> = { fh: undefined, size: 0, path: path ?? vma.path };
  if (!path) return { ...f, problem: 'cannot be opened by that name' };
  try {
    // Never opened unless a regular file (opening a FIFO waits for a writer; a device may act on
    // open), and opened non-blocking should one take its place meanwhile; checked again once open.
    if (!(await stat(path)).isFile()) f.problem = 'is not a regular file';
    else {
      f.fh = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
      const st = await f.fh.stat({ bigint: true });
      if (!st.isFile()) f.problem = 'is not a regular file';
      else if (checkIdentity && !isMappedFile(st, vma.dev, vma.inode)) {
        f.problem = `is another file than the one mapped (device ${vma.dev} inode ${vma.inode}; now ${st.ino}): replaced since the snapshot`;
      } else f.size = Number(st.size);
    }
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    f.problem = code === 'ENOENT' ? 'no longer exists' : `cannot be read (${code ?? (e as Error).message})`;
  }
  if (f.problem) {
    await f.fh?.close().catch(() => undefined);
    f.fh = undefined;
  }
  return f;
}

/** How many pages of `runs` (ascending) lie at or after `addr`. */
function pagesFrom(runs: PageRun[], addr: number, pageSize: number): number {
  let n = 0;
  for (const r of runs) n += Math.max(0, Math.min(r.pages, r.pages - (addr - r.start) / pageSize));
  return n;
}
