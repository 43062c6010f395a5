import type { VmaHeader } from '@pagevault/format';

/** Pages an output handled, by kind. */
export interface PageCounts {
  /** Pages whose contents came in page chunks. */
  data: number;
  /** Pages announced as zero (left as holes, or zeroed in a live process). */
  zero: number;
  /** File-backed pages filled from their file. */
  file: number;
  /**
   * File-backed pages their file could not give (gone, unreadable, too short, replaced): left as holes.
   * Only with onMissingFile 'allow'; otherwise the restore fails on the first.
   */
  fileMissing: number;
}

/** A file whose pages a restore left out (onMissingFile 'allow'), and why. */
export interface MissingFile {
  path: string;
  reason: string;
  pages: number;
}

/** What every output returns. */
export interface OutputStats {
  /** Bytes the output actually wrote (holes and skipped pages excluded). */
  bytesWritten: number;
  pages: PageCounts;
  vmas: number;
  elapsedMs: number;
  /** The files behind pages.fileMissing. */
  missingFiles: MissingFile[];
}

/**
 * Where the bytes of a file-backed VMA are read from. A string is a directory the VMA's path is resolved
 * under (a copy of the source host's root); a function maps each VMA to a path, or undefined for none.
 * Without it, the VMA's path is read as is.
 */
export type FileRoot = string | ((vma: VmaHeader) => string | undefined);

export interface CommonOutputOptions {
  /**
   * Check every frame with StreamValidator (sequence, order, addresses, end counts and digest) before it
   * is used. Default true; pass false only when the caller has validated the same frames already.
   */
  validate?: boolean;
  fileRoot?: FileRoot;
  /**
   * A page the stream says is its mapped file's, which the file cannot give (gone, unreadable, too
   * short, or replaced: FilePageReader): 'fail' (default) fails the restore with PV_FILE_UNAVAILABLE
   * naming the file, before any output is committed; 'allow' leaves it out — a hole (zeros) in a file
   * output, the target's own page in a live one — and reports it in pages.fileMissing and missingFiles.
   */
  onMissingFile?: 'fail' | 'allow';
  /**
   * This host's name as pagevault records it (the CLI's --host, the agent's PV_HOST_NAME), besides
   * os.hostname(): a snapshot taken under either is from this host, and its mapped files are compared
   * with the device and inode it recorded.
   */
  localHost?: string;
  /**
   * Replace an existing output (a file at the path; a directory with anything in it). Default false: an
   * existing output fails with PV_INVALID_ARGUMENT before anything is read.
   */
  replace?: boolean;
}

export interface FileOutputOptions extends CommonOutputOptions {
  /** fsync the output (and its directory) before the final rename. Default true. */
  fsync?: boolean;
  /**
   * Also fill the untouched pages of file-backed VMAs (never faulted in, so absent from the stream) from
   * the file, as the process would have read them; they count as file pages. Otherwise, like every
   * untouched page, they stay holes (zeros), and gdb shows zeros for code the process never ran.
   * Default: true for an ELF core, false for raw images (sparse: holes for zero and untouched pages).
   */
  fillUntouchedFromFile?: boolean;
  /**
   * With fsync, write the pages with O_DIRECT (default true): straight from the restore's buffers to the
   * disk, not through the page cache (output-file.ts). Ignored without fsync, and where the file system
   * has no direct I/O.
   */
  directIo?: boolean;
}

export function emptyCounts(): PageCounts {
  return { data: 0, zero: 0, file: 0, fileMissing: 0 };
}

export function addCounts(into: PageCounts, from: PageCounts): void {
  into.data += from.data;
  into.zero += from.zero;
  into.file += from.file;
  into.fileMissing += from.fileMissing;
}
