import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { checkFrames } from './check-frames';
import type { FrameLog, FrameProducer, FramesDone } from './frame-log';
import { localFileError } from './local-file-error';
import { Signal } from './signal';

export interface SpoolOptions {
  /** Bytes of queued frames kept in memory; past it they are written to the spool file. Default 64 MiB. */
  memoryBytes?: number;
  /** Directory of the spool file (on disk, not a RAM-backed tmpfs, or it bounds nothing). */
  dir: string;
}

interface Entry {
  key: string;
  done: FramesDone | undefined;
  /** In memory, or undefined when spilled as `lengths` back to back from `at` in the spool file. */
  frames: Buffer[] | undefined;
  lengths: number[];
  at: number;
  bytes: number;
}

/** Spool writes in flight before send() waits for the disk. */
const WRITE_WINDOW_BYTES = 32 * 1_048_576;

/**
 * A producer that accepts frames at local-disk speed and forwards them to the log behind it in order:
 * what the log has not acknowledged waits in memory up to `memoryBytes`, then in an unlinked spool file.
 * The agent's capture thaws its target as soon as the last frame is spooled instead of when the log has
 * acknowledged it, so a frozen process waits on the local disk, not on Kafka; shipping then goes on
 * with the target running. flush() still resolves only once the log acknowledged every frame.
 *
 * Memory: `memoryBytes`, 32 MiB of spool writes in flight, and the inner producer's window. If this
 * process dies, spooled frames are lost with it: their snapshot never ends, and the compactor expires it
 * as it would any stream cut short.
 */
export class SpoolingFrameProducer implements FrameProducer {
  private readonly queue: Entry[] = [];
  private readonly memoryBytes: number;
  private memBytes = 0;
  private file: FileHandle | undefined;
  private fileEnd = 0;
  private spilled = 0;
  private writes: Promise<unknown> = Promise.resolve();
  private pumping = false;
  private holds = 0;
  /** Bytes handed to spool writes that have not landed yet (their buffers are still referenced). */
  private writing = 0;
  private failure: Error | undefined;
  private closed = false;
  private readonly progress = new Signal();

  constructor(
    private readonly inner: FrameProducer,
    private readonly maxFrameBytes: number,
    private readonly opts: SpoolOptions,
  ) {
    this.memoryBytes = opts.memoryBytes ?? 64 * 1_048_576;
  }

  /** Bytes queued here (in memory or spooled) and not yet handed to the log. */
  get spooledBytes(): number {
    return this.queue.reduce((n, e) => n + e.bytes, 0);
  }

  async send(key: string, frames: Buffer[], done?: FramesDone): Promise<void> {
    if (this.closed) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `frame producer is closed (snapshot ${key})`);
    if (this.failure) throw this.failure;
    checkFrames(key, frames, this.maxFrameBytes);
    if (frames.length === 0) return;
    const lengths = frames.map((f) => f.length);
    const bytes = lengths.reduce((a, b) => a + b, 0);
    const e: Entry = { key, done, frames, lengths, at: -1, bytes };
    if (this.memBytes + bytes <= this.memoryBytes || this.queue.length === 0) {
      this.memBytes += bytes;
    } else {
      // Reserve the file range now, in send order; the entry is forwarded only after its write landed.
      e.at = this.fileEnd;
      this.fileEnd += bytes;
      this.spilled++;
      this.writing += bytes;
      const write = this.writes
        .then(() => this.spill(frames, e.at))
        .then(() => done?.(frames))
        .finally(() => (this.writing -= bytes));
      this.writes = write.catch(() => undefined);
      write.catch(() => undefined); // its failure is this.failure: thrown below, or by the next send or flush
      e.frames = undefined;
      this.queue.push(e);
      this.pump();
      // Writes overlap the caller's work up to a window; past it the caller waits for the disk.
      if (this.writing > WRITE_WINDOW_BYTES) await write;
      if (this.failure) throw this.failure;
      return;
    }
    this.queue.push(e);
    this.pump();
  }

  /**
   * Holds frames here (forwarding nothing) until the returned function is called: a frozen capture gets
   * the CPU the log client would take, and its target thaws as soon as its frames are spooled.
   */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0) this.pump();
    };
  }

  async flush(): Promise<void> {
    if (this.holds > 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'flush() while the spool is held: release it first');
    while ((this.queue.length > 0 || this.pumping) && !this.failure) {
      await this.progress.changedSince(this.progress.version);
    }
    if (this.failure) throw this.failure;
    try {
      await this.inner.flush();
    } catch (e) {
      throw this.fail(e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
    } finally {
      await this.inner.close();
      await this.file?.close().catch(() => undefined);
      this.file = undefined;
    }
  }

  private pump(): void {
    if (this.pumping || this.holds > 0) return;
    this.pumping = true;
    void this.forward();
  }

  /** Forwards queued entries one at a time, in order; the inner producer's window paces it. */
  private async forward(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure && this.holds === 0) {
        const e = this.queue[0]!;
        // Frames kept in memory go on with the sender's `done`; those read back were handed back already.
        const frames = e.frames ?? (await this.readBack(e));
        await this.inner.send(e.key, frames, e.frames ? e.done : undefined);
        this.queue.shift();
        if (e.frames) this.memBytes -= e.bytes;
        else if (--this.spilled === 0) this.rewind();
        this.progress.notify();
      }
    } catch (e) {
      this.fail(e);
    } finally {
      this.pumping = false;
      this.progress.notify();
    }
  }

  /** Writes an entry's frames at `at` with one writev (continued only if the kernel took less). */
  private async spill(frames: Buffer[], at: number): Promise<void> {
    try {
      const file = (this.file ??= await this.openSpool());
      const done = (await file.writev(frames, at)).bytesWritten;
      const rest = done < frames.reduce((n, f) => n + f.length, 0) ? Buffer.concat(frames).subarray(done) : undefined;
      for (let o = 0; rest && o < rest.length; ) o += (await file.write(rest, o, rest.length - o, at + done + o)).bytesWritten;
    } catch (e) {
      throw this.fail(localFileError(e, 'frame spool', this.opts.dir, 'write'));
    }
  }

  /** Records the first failure (every later send and flush throws it) and returns it. */
  private fail(e: unknown): Error {
    this.failure ??= e instanceof Error ? e : new Error(String(e));
    return this.failure;
  }

  private async readBack(e: Entry): Promise<Buffer[]> {
    await this.writes; // its own write, and every earlier one, has landed (or failed: then this throws below)
    if (this.failure) throw this.failure;
    const all = Buffer.allocUnsafe(e.bytes);
    try {
      for (let done = 0; done < e.bytes; ) {
        const { bytesRead } = await this.file!.read(all, done, e.bytes - done, e.at + done);
        if (bytesRead === 0) throw new Error(`spool file ends at ${e.at + done}, entry needs ${e.at + e.bytes}`);
        done += bytesRead;
      }
    } catch (err) {
      throw localFileError(err, 'frame spool', this.opts.dir, 'read');
    }
    const frames: Buffer[] = [];
    let o = 0;
    for (const n of e.lengths) {
      frames.push(all.subarray(o, o + n));
      o += n;
    }
    return frames;
  }

  /**
   * Nothing spooled is waiting: the file starts over, its space given back. The truncation is queued on
   * the write chain and new reservations start at 0 at once, so a later spill lands after it.
   */
  private rewind(): void {
    const file = this.file;
    if (this.spilled !== 0 || !file) return;
    this.fileEnd = 0;
    const t = this.writes.then(() => file.truncate(0));
    this.writes = t.catch(() => undefined); // a failed truncate only keeps disk space until the next one
  }

  private async openSpool(): Promise<FileHandle> {
    await mkdir(this.opts.dir, { recursive: true });
    const path = join(this.opts.dir, `pagevault-spool-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
    const fh = await open(path, 'wx+', 0o600);
    await unlink(path); // nothing is left behind, whatever ends the process
    return fh;
  }
}

/** A frame log whose producers spool (see SpoolingFrameProducer); consumers are the inner log's. */
export function withSpool(log: FrameLog, opts: SpoolOptions): FrameLog {
  return {
    get maxFrameBytes() {
      return log.maxFrameBytes;
    },
    producer: (o) => new SpoolingFrameProducer(log.producer(o), log.maxFrameBytes, opts),
    consumer: (groupId) => log.consumer(groupId),
    ensureTopic: () => log.ensureTopic(),
    endOffsets: () => log.endOffsets(),
  };
}
