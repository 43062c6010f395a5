import { constants } from 'node:fs';
import { mkdir, open, readdir, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { alignedBuffer, alignUp, paddedView, writeFullyAt } from '@pagevault/format';
import { checkFrames } from './check-frames';
import type { FrameLog, FrameProducer, FramesDone, RecordHeaders } from './frame-log';
import { localFileError } from './local-file-error';
import type { LogSink } from './log-sink';
import { Signal } from './signal';

export interface SpoolOptions {
  /** Bytes of queued frames kept in memory; past it they are written to the spool file. Default 64 MiB. */
  memoryBytes?: number;
  /** Directory of the spool file (on disk, not a RAM-backed tmpfs, or it bounds nothing). */
  dir: string;
  /**
   * Write the spool with O_DIRECT (default true; the page cache where the file system has no direct I/O):
   * spilled frames go from memory to the disk without the kernel allocating page cache for them while the
   * target is frozen.
   */
  direct?: boolean;
  /** Where the producer says that its spool could not be written and it fell back on memory (warn). */
  log?: LogSink;
}

interface Entry {
  key: string;
  done: FramesDone | undefined;
  headers: RecordHeaders | undefined;
  /** In memory, or undefined when spilled to the spool file from `at` (see layoutEntry). */
  frames: Buffer[] | undefined;
  lengths: number[];
  at: number;
  layout: Layout | undefined;
  bytes: number;
}

/**
 * Where a spilled entry's frames lie in the spool file, from the entry's start, and the writes that put
 * them there. A frame with room to be written as it is (a FramePool's: paddedView) starts block-aligned
 * and is written from its own memory; runs of other frames (headers, runs, a VMA's short last chunk) lie
 * back to back from a block-aligned start and go in one staged write per run, instead of one 4 KiB-padded
 * write each (a heap of a thousand VMAs spooled thousands of those while frozen, waiting on the device).
 */
interface Layout {
  offsets: number[];
  /** Block-aligned end of the last write: the bytes to read back with O_DIRECT. */
  span: number;
  /** Frames [from, to) staged together at `at`, `bytes` long (before padding). */
  runs: { from: number; to: number; at: number; bytes: number }[];
  /** Frames written from their own memory: frame i as its padded view. */
  own: { i: number; view: Buffer }[];
}

/** The most bytes one staged run holds; a longer run of frames is split. */
const RUN_MAX_BYTES = 4 * 1_048_576;

export function layoutEntry(frames: readonly Buffer[]): Layout {
  const offsets: number[] = [];
  const runs: Layout['runs'] = [];
  const own: Layout['own'] = [];
  let cur = 0;
  let run: Layout['runs'][number] | undefined;
  frames.forEach((f, i) => {
    const view = paddedView(f);
    if (view) {
      run = undefined;
      cur = alignUp(cur);
      offsets.push(cur);
      own.push({ i, view });
      cur += view.length;
      return;
    }
    if (run && run.bytes + f.length > RUN_MAX_BYTES) run = undefined;
    if (!run) {
      cur = alignUp(cur);
      runs.push((run = { from: i, to: i, at: cur, bytes: 0 }));
    }
    offsets.push(cur);
    cur += f.length;
    run.to = i + 1;
    run.bytes += f.length;
  });
  return { offsets, span: alignUp(cur), runs, own };
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
 * The spool is written with O_DIRECT where the file system has it, several writes at once, so a frozen
 * target does not wait on the kernel allocating page cache (on this VM, whose idle memory goes back to
 * the host, ~9 µs a page: a 1 GiB capture stayed frozen 1.1-2.5 s through the page cache against
 * 0.6-0.7 s direct). A FramePool's frame sits at a block-aligned offset and is written from its own
 * memory; runs of other frames are packed and copied into one aligned staging buffer each (layoutEntry).
 *
 * A spool that cannot be written (a full disk, a directory that cannot be created) loses nothing and
 * fails nothing: the frames of a failed write are still in memory and stay queued there, nothing more is
 * spilled until all that is queued has gone to the log, a send waits while more than `memoryBytes` is
 * queued, and a hold no longer holds. Frames go at the log's pace, so a capture's target stays frozen
 * longer (one warning to `log`). flush() still resolves only once the log acknowledged every frame.
 *
 * Memory: `memoryBytes`, 32 MiB of spool writes in flight and their staged copies (the process keeps up
 * to 64 MiB of staging buffers for the next spills), and the inner producer's window. If this process
 * dies, spooled frames are lost with it: their snapshot never ends, and the compactor expires it as it
 * would any stream cut short.
 */
export class SpoolingFrameProducer implements FrameProducer {
  private readonly queue: Entry[] = [];
  private readonly memoryBytes: number;
  private memBytes = 0;
  private file: FileHandle | undefined;
  /** Whether `file` was opened with O_DIRECT: entries are then written from and read into aligned buffers. */
  private direct = false;
  /** The spool file being opened (once). */
  private opening: Promise<FileHandle> | undefined;
  private fileEnd = 0;
  private spilled = 0;
  /** Settles once every spool write issued so far (and the last truncation) has. */
  private landed: Promise<unknown> = Promise.resolve();
  /** The last truncation: writes issued after it start once it is done. */
  private barrier: Promise<unknown> = Promise.resolve();
  private pumping = false;
  private holds = 0;
  /** Bytes handed to spool writes that have not landed yet (their buffers are still referenced). */
  private writing = 0;
  private failure: Error | undefined;
  /** Why the spool could not be written: until all queued has gone to the log, frames stay in memory and go at its pace. */
  private spoolDown: Error | undefined;
  private warned = false;
  private closed = false;
  private readonly progress = new Signal();

  constructor(
    private readonly inner: FrameProducer,
    private readonly maxFrameBytes: number,
    private readonly opts: SpoolOptions,
  ) {
    this.memoryBytes = opts.memoryBytes ?? 64 * 1_048_576;
  }

  /** How the spool file is written, once it exists: 'direct' (O_DIRECT) or 'buffered' (the page cache). */
  get spoolIo(): 'direct' | 'buffered' | undefined {
    return this.file ? (this.direct ? 'direct' : 'buffered') : undefined;
  }

  /** Bytes queued here (in memory or spooled) and not yet handed to the log. */
  get spooledBytes(): number {
    return this.queue.reduce((n, e) => n + e.bytes, 0);
  }

  async send(key: string, frames: Buffer[], done?: FramesDone, headers?: RecordHeaders): Promise<void> {
    if (this.closed) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `frame producer is closed (snapshot ${key})`);
    if (this.failure) throw this.failure;
    checkFrames(key, frames, this.maxFrameBytes);
    if (frames.length === 0) return;
    const lengths = frames.map((f) => f.length);
    const bytes = lengths.reduce((a, b) => a + b, 0);
    const e: Entry = { key, done, headers, frames, lengths, at: -1, layout: undefined, bytes };
    if (this.memBytes + bytes <= this.memoryBytes || this.queue.length === 0 || this.spoolDown) {
      this.memBytes += bytes;
    } else {
      // Reserve the file range now, in send order; the entry is forwarded only after its write landed.
      // Every write starts block-aligned, so each can be written and the entry read back with O_DIRECT.
      const layout = (e.layout = layoutEntry(frames));
      e.at = this.fileEnd;
      this.fileEnd += layout.span;
      this.spilled++;
      // In flight counts what the writes hold: the frames, and the staging copies of the runs.
      const holds = bytes + (this.direct ? layout.runs.reduce((n, r) => n + stageSize(alignUp(r.bytes)), 0) : 0);
      this.writing += holds;
      // Writes run concurrently (each at its own range): one at a time, a direct write of ~1 MiB waits
      // for the device's round trip, ~1 GB/s here against ~2-3 GB/s with several in flight.
      const write = this.barrier
        .then(() => this.spill(e, frames, layout))
        .then((spilled) => spilled && done?.(frames))
        .finally(() => (this.writing -= holds));
      this.landed = Promise.all([this.landed, write.catch(() => undefined)]);
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
    // Without a spool, memory is the bound: wait for the log to take what is past it.
    while (this.spoolDown && this.memBytes > this.memoryBytes && !this.failure) {
      await this.progress.changedSince(this.progress.version);
    }
    if (this.failure) throw this.failure;
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
    if (this.pumping || (this.holds > 0 && !this.spoolDown)) return;
    this.pumping = true;
    void this.forward();
  }

  /** Forwards queued entries one at a time, in order; the inner producer's window paces it. */
  private async forward(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure && (this.holds === 0 || this.spoolDown)) {
        const e = this.queue[0]!;
        // Frames kept in memory go on with the sender's `done`; those read back were handed back already.
        const frames = e.frames ?? (await this.readBack(e));
        await this.inner.send(e.key, frames, e.frames ? e.done : undefined, e.headers);
        this.queue.shift();
        if (this.queue.length === 0) this.spoolDown = undefined; // all queued went to the log: try the disk again
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

  /**
   * Writes an entry's frames from `at` as laid out (layoutEntry), concurrently. With O_DIRECT a frame a
   * FramePool allocated goes to the disk as it is (paddedView: no copy while a target is frozen), and each
   * run of other frames is copied into one aligned staging buffer and written with one call. Through the
   * page cache where the file system has no direct I/O: every frame as it is, at its offset.
   */
  private async spill(e: Entry, frames: Buffer[], layout: Layout): Promise<boolean> {
    const at = e.at;
    try {
      const file = (this.file ??= await (this.opening ??= this.openSpool()));
      await Promise.all(
        this.direct
          ? [
              ...layout.own.map((o) => writeFullyAt(file, o.view, at + layout.offsets[o.i]!)),
              ...layout.runs.map((r) => this.writeRun(file, frames, r, at)),
            ]
          : frames.map((f, i) => writeFullyAt(file, f, at + layout.offsets[i]!)),
      );
      return true;
    } catch (err) {
      this.keepInMemory(e, frames, localFileError(err, 'frame spool', this.opts.dir, 'write'));
      return false;
    }
  }

  /** A spill failed: its frames (not handed back) stay queued in memory, and nothing more is spilled for now. */
  private keepInMemory(e: Entry, frames: Buffer[], err: Error): void {
    this.spoolDown ??= err;
    if (!this.warned) {
      this.warned = true;
      this.opts.log?.({
        level: 'warn',
        namespace: 'framelog.spool',
        message: `${err.message}: frames stay in memory and go at the log's pace until all queued has gone`,
        extra: { dir: this.opts.dir },
      });
    }
    e.frames = frames;
    e.layout = undefined;
    this.memBytes += e.bytes;
    if (--this.spilled === 0) this.rewind();
    this.pump();
    this.progress.notify();
  }

  private async writeRun(file: FileHandle, frames: Buffer[], run: Layout['runs'][number], at: number): Promise<void> {
    const padded = alignUp(run.bytes);
    const stage = takeStage(padded);
    try {
      let o = 0;
      for (let i = run.from; i < run.to; i++) o += frames[i]!.copy(stage, o);
      await writeFullyAt(file, stage.subarray(0, padded), at + run.at);
    } finally {
      giveStage(stage);
    }
  }

  /** Records the first failure (every later send and flush throws it) and returns it. */
  private fail(e: unknown): Error {
    this.failure ??= e instanceof Error ? e : new Error(String(e));
    return this.failure;
  }

  private async readBack(e: Entry): Promise<Buffer[]> {
    await this.landed; // its own write, and every earlier one, has landed (or failed: then this throws below)
    if (this.failure) throw this.failure;
    if (e.frames) return e.frames; // its write failed: kept in memory
    // Direct writes wrote the padding too; through the page cache the file may end with the last frame.
    const { offsets, span } = e.layout!;
    const n = e.lengths.length;
    const want = this.direct ? span : offsets[n - 1]! + e.lengths[n - 1]!;
    const all = this.direct ? alignedBuffer(span) : Buffer.allocUnsafe(want);
    try {
      for (let done = 0; done < want; ) {
        const { bytesRead } = await this.file!.read(all, done, want - done, e.at + done);
        if (bytesRead === 0) throw new Error(`spool file ends at ${e.at + done}, entry needs ${e.at + want}`);
        done += bytesRead;
      }
    } catch (err) {
      throw localFileError(err, 'frame spool', this.opts.dir, 'read');
    }
    // Frames of a few KiB read into their padded spans would hold up to twice their size (and 4 KiB
    // more) until the log acknowledges them: copied out to their exact size instead.
    const copy = span + 4096 > e.bytes * 1.25;
    return e.lengths.map((len, i) => {
      const f = all.subarray(offsets[i]!, offsets[i]! + len);
      return copy ? Buffer.from(f) : f;
    });
  }

  /**
   * Nothing spooled is waiting: the file starts over, its space given back. The truncation runs once every
   * write issued so far has landed, and new reservations start at 0 at once: their writes wait for it.
   */
  private rewind(): void {
    const file = this.file;
    if (this.spilled !== 0 || !file) return;
    this.fileEnd = 0;
    const t = this.landed.then(() => file.truncate(0));
    this.barrier = this.landed = t.catch(() => undefined); // a failed truncate only keeps disk space until the next one
  }

  private async openSpool(): Promise<FileHandle> {
    await mkdir(this.opts.dir, { recursive: true });
    await removeDeadSpools(this.opts.dir);
    const path = join(this.opts.dir, `pagevault-spool-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
    // O_DIRECT: frames go from memory to the disk without becoming page cache, which the kernel would
    // first have to allocate while the target is frozen (measured in docs/benchmarks.md). Where the file
    // system has no direct I/O (EINVAL), the page cache.
    let fh: FileHandle | undefined;
    if (this.opts.direct !== false && 'O_DIRECT' in constants) {
      try {
        fh = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600);
        this.direct = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EINVAL') throw e;
      }
    }
    fh ??= await open(path, 'wx+', 0o600);
    await unlink(path); // nothing is left behind, whatever ends the process
    return fh;
  }
}

/** Directories swept of dead processes' spool files by this process (once each). */
const swept = new Set<string>();

/**
 * A spool file is unlinked right after it is created; a process killed between the two (SIGKILL, the OOM
 * killer) leaves it behind, empty or not. The first spool a process opens in a directory removes those
 * whose creator (the pid in the name) is gone. A live process with that pid is left alone, whoever it is.
 */
async function removeDeadSpools(dir: string): Promise<void> {
  if (swept.has(dir)) return;
  swept.add(dir);
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const pid = /^pagevault-spool-(\d+)-/.exec(name)?.[1];
    if (pid === undefined || Number(pid) === process.pid || alive(Number(pid))) continue;
    await unlink(join(dir, name)).catch(() => undefined); // another sweeper got it first, or not ours to remove
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH'; // EPERM: it exists, another user's
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

/**
 * Aligned staging buffers of spool writes, one per write in flight, kept for the next writes of any
 * producer of the process up to STAGE_KEEP_BYTES (a fresh buffer costs page faults on its first fill,
 * while a target is frozen). Sizes are powers of two, an entry takes a buffer of its own size class, and
 * the write window counts the buffers: however small the entries, staged bytes in flight stay within it
 * (a 1 MiB buffer per entry of a few KiB once took the agent's RSS from ~300 to ~600 MiB on a heap with a
 * thousand VMAs).
 */
const stages = new Map<number, Buffer[]>();
const STAGE_KEEP_BYTES = 2 * WRITE_WINDOW_BYTES;

let stagedBytes = 0;

/** The size class of a staging buffer for `bytes` (block-aligned): the next power of two. */
function stageSize(bytes: number): number {
  return 2 ** Math.ceil(Math.log2(bytes));
}

/** A staging buffer of `bytes`' size class from the process's free list, or a new one. */
function takeStage(bytes: number): Buffer {
  const size = stageSize(bytes);
  const b = stages.get(size)?.pop();
  if (!b) return alignedBuffer(size);
  stagedBytes -= size;
  return b;
}

function giveStage(stage: Buffer): void {
  if (stagedBytes + stage.length > STAGE_KEEP_BYTES) return;
  let list = stages.get(stage.length);
  if (!list) stages.set(stage.length, (list = []));
  list.push(stage);
  stagedBytes += stage.length;
}

