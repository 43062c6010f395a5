import { closeSync, constants, ftruncateSync, openSync, readSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { ErrorCodes, PvError, errnoOf, fileFailure, type ErrorCode } from '@pagevault/errors';
import { DIRECT_ALIGN, alignedBuffer, writeFullyAtSync } from '@pagevault/format';
import { flushEarly, settle } from './early-flush';
import { writeFully } from './sparse-writes';

/**
 * A file a restore output writes: positional writes of whole buffers (the caller may reuse a buffer once
 * its write resolved), a read back, and an end that makes it durable (or removes nothing: the caller's
 * atomic rename decides what is complete).
 */
export interface OutputFile {
  /**
   * How the pages are written: 'direct' (O_DIRECT, durable outputs), 'buffered' (the page cache), or
   * 'small' (the page cache, by synchronous calls).
   */
  readonly kind: 'direct' | 'buffered' | 'small';
  write(buf: Buffer, position: number): Promise<number>;
  truncate(length: number): Promise<void>;
  read(buf: Buffer, position: number): Promise<number>;
  /** Every write landed (and, with fsync, is on disk); then closed. Throws what a background write met. */
  finish(): Promise<void>;
  /** Closes on a failure path, ignoring errors; nothing more after finish() (even one that threw) closed it. */
  abandon(): Promise<void>;
}

export interface OutputFileOptions {
  fsync: boolean;
  /** Open flags of the file (default 'wx': a new file). */
  flags?: string;
  /**
   * With fsync, write page-aligned runs with O_DIRECT (default true): they go from the restore's buffers
   * to the disk without becoming page cache first. See DirectOutput.
   */
  direct?: boolean;
  /**
   * A small file written without fsync (default false): written with synchronous calls on the page
   * cache, each a few µs, where a FileHandle and a promise per call cost ~50 µs of the main thread (a
   * raw restore of 20,000 one-page VMAs spent most of its time opening, truncating, writing and closing
   * that way). Only for files of a few pages: a synchronous write blocks the event loop while it runs.
   */
  small?: boolean;
}

/** Opens a new output file: direct I/O for a durable output where the file system has it, buffered otherwise. */
export async function openOutputFile(path: string, o: OutputFileOptions): Promise<OutputFile> {
  if (o.small && !o.fsync) return SmallOutput.open(path, o.flags ?? 'wx');
  const fh = await open(path, o.flags ?? 'wx').catch((e: unknown) => Promise.reject(outputError(e, path, 'open')));
  if (!o.fsync || o.direct === false || !('O_DIRECT' in constants)) return new BufferedOutput(fh, o.fsync, path);
  try {
    const direct = await open(path, constants.O_WRONLY | constants.O_DIRECT);
    return new DirectOutput(fh, direct, path);
  } catch (e) {
    // EINVAL: a file system without O_DIRECT (tmpfs before Linux 6.6, some FUSE ones) keeps the page cache.
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') return new BufferedOutput(fh, o.fsync, path);
    await fh.close().catch(() => undefined);
    throw outputError(e, path, 'open');
  }
}

/**
 * A failure of an output file as a typed error naming it: PV_STORE_FULL when the disk is full,
 * PV_PERMISSION_DENIED when it may not be written, PV_INVALID_ARGUMENT when it exists already,
 * PV_STORE_UNAVAILABLE for any other I/O error (EIO...).
 */
export function outputError(e: unknown, path: string, op: string): PvError {
  if (e instanceof PvError) return e;
  const errno = errnoOf(e);
  const { code, why } = fileFailure(errno)
    ?? pathFailure(errno) ?? { code: ErrorCodes.STORE_UNAVAILABLE, why: '' };
  return new PvError(code, `output ${path}: ${op} failed${why ? `: ${why}` : ''} (${errno ?? String(e)})`, { cause: e, details: { path, op, errno } });
}

/** Errors that say the output path itself is wrong: the caller's to fix, not a service down. */
function pathFailure(errno: string | undefined): { code: ErrorCode; why: string } | undefined {
  const why = {
    EEXIST: 'it exists already', ENOTEMPTY: 'it exists already', ENOENT: 'its directory does not exist', ENOTDIR: 'a component of it is not a directory',
    EISDIR: 'it is a directory', ENAMETOOLONG: 'the name is too long', ELOOP: 'too many symbolic links',
    ERR_INVALID_ARG_VALUE: 'not a path (it holds a NUL byte)', ERR_INVALID_ARG_TYPE: 'not a path',
  }[errno ?? ''];
  return why ? { code: ErrorCodes.INVALID_ARGUMENT, why } : undefined;
}

/**
 * Writes through the page cache; with fsync its writeback starts in the background as it is written
 * (flushEarly), so the final fsync has little left to do.
 */
class BufferedOutput implements OutputFile {
  readonly kind = 'buffered';
  constructor(
    private readonly fh: FileHandle,
    private readonly fsync: boolean,
    private readonly path: string,
  ) {
    if (fsync) flushEarly(fh);
  }

  write(buf: Buffer, position: number): Promise<number> {
    return writeFully(this.fh, buf, position).catch((e: unknown) => Promise.reject(outputError(e, this.path, 'write')));
  }

  async truncate(length: number): Promise<void> {
    await this.fh.truncate(length).catch((e: unknown) => Promise.reject(outputError(e, this.path, 'truncate')));
  }

  async read(buf: Buffer, position: number): Promise<number> {
    return (await this.fh.read(buf, 0, buf.length, position)).bytesRead;
  }

  async finish(): Promise<void> {
    try {
      await settle(this.fh);
      if (this.fsync) await this.fh.sync();
    } catch (e) {
      throw outputError(e, this.path, 'fsync');
    } finally {
      await settle(this.fh).catch(() => undefined);
      await this.fh.close();
    }
  }

  async abandon(): Promise<void> {
    await settle(this.fh).catch(() => undefined);
    await this.fh.close().catch(() => undefined);
  }
}

/** A small file on the page cache, written with synchronous calls (OutputFileOptions.small). */
class SmallOutput implements OutputFile {
  readonly kind = 'small';
  private fd: number;

  private constructor(fd: number, private readonly path: string) {
    this.fd = fd;
  }

  static open(path: string, flags: string): Promise<OutputFile> {
    try {
      return Promise.resolve(new SmallOutput(openSync(path, flags), path));
    } catch (e) {
      return Promise.reject(outputError(e, path, 'open'));
    }
  }

  write(buf: Buffer, position: number): Promise<number> {
    try {
      writeFullyAtSync(this.fd, buf, position);
      return Promise.resolve(buf.length);
    } catch (e) {
      return Promise.reject(outputError(e, this.path, 'write'));
    }
  }

  truncate(length: number): Promise<void> {
    try {
      ftruncateSync(this.fd, length);
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(outputError(e, this.path, 'truncate'));
    }
  }

  read(buf: Buffer, position: number): Promise<number> {
    try {
      return Promise.resolve(readSync(this.fd, buf, 0, buf.length, position));
    } catch (e) {
      return Promise.reject(outputError(e, this.path, 'read'));
    }
  }

  finish(): Promise<void> {
    try {
      this.close();
      return Promise.resolve();
    } catch (e) {
      return Promise.reject(outputError(e, this.path, 'close'));
    }
  }

  abandon(): Promise<void> {
    try {
      this.close();
    } catch {
      // a failure path already: its own error is the one to report
    }
    return Promise.resolve();
  }

  /** Once: a file's descriptor number may be another file's after it is closed. */
  private close(): void {
    if (this.fd < 0) return;
    const fd = this.fd;
    this.fd = -1;
    closeSync(fd);
  }
}

/** Staging buffers per file, each one write in flight: the disk works while the restore computes. */
const SLOTS = 4;
const SLOT_BYTES = 4 << 20;

/**
 * A durable output written with O_DIRECT. A restore writes each page once and never reads it again, so
 * the page cache only adds work: a copy into pages the kernel must first allocate (measured here, on a VM
 * whose memory the host hands back when it is idle: ~9 µs a page, buffered writes then fsync ~440 MB/s
 * against ~1.8-3 GB/s direct), then a writeback that fsync waits for. Page-aligned runs (a restore's
 * pages) are copied into one of SLOTS aligned staging buffers and written from it while the next one
 * fills; anything else (ELF headers and notes, a file's last partial page) goes through a buffered handle
 * of the same file, on pages no direct write touches. finish() waits for every write, then one fsync
 * covers both handles (same inode). If the file system refuses a direct write (EINVAL), that write and
 * every later one go buffered. (Exported for tests: openOutputFile is the way to open one.)
 */
export class DirectOutput implements OutputFile {
  readonly kind = 'direct';
  private readonly slots: Buffer[];
  private readonly busy: (Promise<void> | undefined)[] = new Array(SLOTS).fill(undefined);
  private next = 0;
  private failure: unknown;
  private directOk = true;
  private closed = false;
  private slotsGiven = false;

  constructor(
    private readonly fh: FileHandle,
    private readonly direct: FileHandle,
    private readonly path: string,
  ) {
    this.slots = takeSlots();
  }

  async write(buf: Buffer, position: number): Promise<number> {
    this.check();
    if (!this.directOk || position % DIRECT_ALIGN !== 0 || buf.length % DIRECT_ALIGN !== 0) {
      return writeFully(this.fh, buf, position).catch((e: unknown) => Promise.reject(outputError(e, this.path, 'write')));
    }
    for (let o = 0; o < buf.length; ) {
      const i = this.next;
      this.next = (i + 1) % SLOTS;
      await this.busy[i];
      this.check();
      const n = Math.min(SLOT_BYTES, buf.length - o);
      const slot = this.slots[i]!.subarray(0, n);
      buf.copy(slot, 0, o, o + n);
      const at = position + o;
      this.busy[i] = this.writeSlot(slot, at).then(
        () => undefined,
        (e: unknown) => void (this.failure ??= outputError(e, this.path, 'write')),
      );
      o += n;
    }
    return buf.length;
  }

  async truncate(length: number): Promise<void> {
    await this.fh.truncate(length).catch((e: unknown) => Promise.reject(outputError(e, this.path, 'truncate')));
  }

  async read(buf: Buffer, position: number): Promise<number> {
    await this.drain(); // a range being written directly reads back from the disk once it landed
    return (await this.fh.read(buf, 0, buf.length, position)).bytesRead;
  }

  async finish(): Promise<void> {
    try {
      await this.drain();
      this.releaseSlots(); // the next file's writes need not wait for this one's fsync
      // One fsync: the data written either way, the file's size and blocks, the disk's cache.
      await this.fh.sync().catch((e: unknown) => Promise.reject(outputError(e, this.path, 'fsync')));
    } finally {
      await this.close();
    }
  }

  async abandon(): Promise<void> {
    await this.drain().catch(() => undefined);
    await this.close().catch(() => undefined);
  }

  private async writeSlot(slot: Buffer, at: number): Promise<void> {
    if (this.directOk) {
      try {
        await writeFully(this.direct, slot, at);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
        this.directOk = false;
      }
    }
    await writeFully(this.fh, slot, at);
  }

  private async drain(): Promise<void> {
    await Promise.all(this.busy);
    this.check();
  }

  private check(): void {
    if (this.failure !== undefined) throw this.failure;
  }

  /**
   * Once: the writers abandon a file whose finish() threw, and giving the slots back twice would hand one
   * set of staging buffers to two later outputs at once.
   */
  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await Promise.all([this.direct.close(), this.fh.close()]);
    } finally {
      this.releaseSlots();
    }
  }

  private releaseSlots(): void {
    if (this.slotsGiven) return;
    this.slotsGiven = true;
    giveSlots(this.slots);
  }
}

/** Staging buffers kept for the next direct output of this process (restores write one file at a time). */
const spareSlots: Buffer[][] = [];

function takeSlots(): Buffer[] {
  return spareSlots.pop() ?? Array.from({ length: SLOTS }, () => alignedBuffer(SLOT_BYTES));
}

function giveSlots(slots: Buffer[]): void {
  if (spareSlots.length < 2) spareSlots.push(slots);
}
