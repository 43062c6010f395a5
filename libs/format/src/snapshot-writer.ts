import { createHash, type Hash } from 'node:crypto';
import { ErrorCodes, PvError } from '@pagevault/errors';
import {
  ABSOLUTE_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES, FrameType, HEADER_BYTES, MAX_PAGE_SIZE, MIN_PAGE_SIZE, VmaFlag,
} from './constants';
import type { PageRun, SnapshotBegin, SnapshotEnd, VmaHeader } from './types';
import {
  allocPageChunk, encodeAbort, encodeRuns, encodeSnapshotBegin, encodeSnapshotEnd, encodeVmaBegin,
  encodeVmaEnd, pageChunkBytes, writeChunkAddress,
} from './v1/encode';
import { sealFrame, writeHeader } from './v1/header';
import type { FramePool } from './frame-pool';
import type { FrameSealer } from './frame-sealer';

export interface SnapshotWriterOptions {
  snapshotId: Uint8Array;
  /** Receives each sealed frame in order; the buffer is the receiver's to keep. */
  emit: (frame: Buffer) => void;
  maxFrameBytes?: number;
  /** Full page-chunk frames come from here; the receiver may give frames back when done with them. */
  pool?: FramePool;
  /**
   * Page-chunk CRCs are computed here, on a helper thread, while the next chunk fills; frames are then
   * emitted a little later but in the same order and with the same bytes.
   */
  sealer?: FrameSealer;
}

/** Chunk frames waiting for their CRC at most: beyond, the writer waits for the oldest. */
const MAX_SEALING = 8;

/**
 * Chunk frames smaller than this are sealed here: the native CRC of 64 KiB (~4 µs) costs less than
 * handing it to the sealer's thread and waking it (a futex call each; 20,000 one-page VMAs spent 200 ms
 * of a 1.3 s freeze in those hand-offs).
 */
const SEAL_INLINE_BYTES = 64 << 10;

type RunKind = FrameType.ZeroRuns | FrameType.FileRuns | FrameType.ParentRuns;
const RUN_KINDS: RunKind[] = [FrameType.ZeroRuns, FrameType.FileRuns, FrameType.ParentRuns];

/** Slabs short chunk frames are cut from: a frame of up to an eighth of one is cut, a larger one allocated. */
const SLAB_BYTES = 1 << 20;

/**
 * Writes one snapshot as frames in the canonical order of docs/format.md: for each VMA its header, then
 * page chunks (filled to capacity, in address order), then zero, file and parent runs, then its end.
 * The same memory state therefore always gives the same bytes, whoever writes it (agent, dump, restorer).
 * Memory: one chunk frame being filled plus the runs of the current VMA.
 */
export class SnapshotWriter {
  private seq = 0;
  private readonly digest: Hash = createHash('sha256');
  private readonly maxFrameBytes: number;
  private pageSize = 0;
  private chunkCap = 0;
  private vma: VmaHeader | undefined;
  private vmaCount = 0;
  private chunk: { frame: Buffer; dataOffset: number; n: number; cap: number } | undefined;
  /** At most this many more data pages in the current VMA (expectPages); 0: not known. */
  private pending = 0;
  private runs = new Map<RunKind, PageRun[]>();
  private lastAddr = -1;
  /** Frames numbered but not emitted yet, in order: chunks whose CRC is being computed, and what follows them. */
  private readonly queue: { frame: Buffer; ticket: number }[] = [];
  private sealing = 0;
  readonly counts = { dataPages: 0, zeroPages: 0, filePages: 0, parentPages: 0 };
  private finished = false;
  /** Where short chunk frames are cut from (see shortFrame), and how much of it is taken. */
  private slab: Buffer | undefined;
  private slabUsed = 0;

  constructor(private readonly opts: SnapshotWriterOptions) {
    this.maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  }

  get snapshotId(): Uint8Array {
    return this.opts.snapshotId;
  }

  get framesWritten(): number {
    return this.seq;
  }

  begin(b: SnapshotBegin): void {
    const ps = b.pageSize;
    if (!(ps >= MIN_PAGE_SIZE && ps <= MAX_PAGE_SIZE && (ps & (ps - 1)) === 0)) {
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `page size ${ps} is not a power of two in [${MIN_PAGE_SIZE}, ${MAX_PAGE_SIZE}]`);
    }
    const cap = Math.floor((this.maxFrameBytes - HEADER_BYTES - 8) / (8 + ps));
    // `!(>= 1)` also refuses a NaN maximum: addPages must never run with a capacity below one page.
    if (!(cap >= 1) || this.maxFrameBytes > ABSOLUTE_MAX_FRAME_BYTES) {
      throw new PvError(ErrorCodes.CONFIG_INVALID, `max frame ${this.maxFrameBytes} cannot hold a page or exceeds ${ABSOLUTE_MAX_FRAME_BYTES}`);
    }
    this.pageSize = ps;
    this.chunkCap = cap;
    this.push(encodeSnapshotBegin(this.opts.snapshotId, this.seq, b));
  }

  /** Pages per full chunk frame under the configured maximum. */
  get pagesPerChunk(): number {
    return this.chunkCap;
  }

  beginVma(v: Omit<VmaHeader, 'index'>): number {
    if (this.vma) throw new Error('beginVma inside a VMA');
    if (this.chunkCap < 1) throw new Error('beginVma before begin');
    const vma = { ...v, index: this.vmaCount++ };
    this.vma = vma;
    this.lastAddr = -1;
    this.pending = 0;
    for (const k of RUN_KINDS) this.runs.set(k, []);
    this.push(encodeVmaBegin(this.opts.snapshotId, this.seq, vma));
    return vma.index;
  }

  /**
   * Adds n pages whose contents lie back to back in data[offset, offset + n * pageSize), at the given
   * ascending addresses. Copies them into the chunk being filled; one copy per run of pages.
   */
  addPages(addrs: ArrayLike<number>, data: Buffer, offset = 0, n = addrs.length): void {
    this.requirePagesVma();
    const ps = this.pageSize;
    if (n > addrs.length || offset < 0 || offset + n * ps > data.length) {
      // Buffer.copy would copy less and leave the rest of the chunk uninitialised memory.
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `addPages: ${n} pages need ${n} addresses and ${n * ps} bytes from offset ${offset}; got ${addrs.length} and ${data.length}`);
    }
    let i = 0;
    while (i < n) {
      const c = this.openChunk();
      const take = Math.min(n - i, c.cap - c.n);
      data.copy(c.frame, c.dataOffset + c.n * ps, offset + i * ps, offset + (i + take) * ps);
      this.took(c, addrs, i, take);
      i += take;
    }
  }

  /** Data pages the chunk being filled still has room for (what the next chunk will hold when none is open). */
  get pageRoom(): number {
    const c = this.chunk;
    return c ? c.cap - c.n : this.nextCap();
  }

  /**
   * Tells the writer that at most n more data pages follow in this VMA. The last chunk of a VMA is then
   * laid out for the pages it will hold instead of a full chunk's, so it need not be laid out again (a
   * copy of its pages) when the VMA ends: on a Node.js heap of ~700 VMAs, most of them a few pages, that
   * copy was a quarter of a capture. More pages than announced would break the canonical layout: n must
   * be an upper bound.
   */
  expectPages(n: number): void {
    this.requirePagesVma();
    this.pending = n;
  }

  /**
   * Where the next data pages go, in the chunk being filled (opened if needed): page k at
   * frame[offset + k * pageSize] for k < room, taken with placedPages. A reader can read pages straight
   * into the frame instead of into a buffer of its own and then copying them here.
   */
  pageSpace(): { frame: Buffer; offset: number; room: number } {
    this.requirePagesVma();
    const c = this.openChunk();
    return { frame: c.frame, offset: c.dataOffset + c.n * this.pageSize, room: c.cap - c.n };
  }

  /** Pages the next chunk is laid out for: a full chunk, or fewer when expectPages said so. */
  private nextCap(): number {
    return this.pending >= 1 ? Math.min(this.chunkCap, this.pending) : this.chunkCap;
  }

  /**
   * The chunk being filled, opened if needed: a full one from the pool, or one of exactly the pages
   * still announced (not from the pool, whose frames are all full-size: a short frame would hold a whole
   * one while counted at its length).
   */
  private openChunk(): { frame: Buffer; dataOffset: number; n: number; cap: number } {
    if (this.chunk) return this.chunk;
    const cap = this.nextCap();
    const from = cap === this.chunkCap ? this.opts.pool : this.shortFrame;
    return (this.chunk = { ...allocPageChunk(cap, this.pageSize, from), n: 0, cap });
  }

  /**
   * A short chunk frame (the last of a VMA, laid out for the pages announced) cut from a shared slab of
   * SLAB_BYTES: a process of thousands of small VMAs otherwise costs a buffer of its own for each, and
   * the collector time to track them (20,000 one-page VMAs: 330 ms of a 1.3 s freeze). The frames cut
   * from one slab belong to one snapshot and are let go together, once the log has them.
   */
  private readonly shortFrame = (bytes: number): Buffer => {
    if (bytes > SLAB_BYTES / 8) return Buffer.allocUnsafe(bytes);
    const at = (this.slabUsed + 7) & ~7; // 8-byte aligned, as the addresses are read as words
    if (!this.slab || at + bytes > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.slabUsed = bytes;
      return this.slab.subarray(0, bytes);
    }
    this.slabUsed = at + bytes;
    return this.slab.subarray(at, at + bytes);
  };

  /** Takes the first n pages at pageSpace()'s offset (n <= room) as the pages at these ascending addresses. */
  placedPages(addrs: ArrayLike<number>, n: number): void {
    this.requirePagesVma();
    const c = this.chunk;
    if (n === 0) return;
    if (!c || n > c.cap - c.n || n > addrs.length) {
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `placedPages: ${n} pages do not fit the ${c ? c.cap - c.n : 0} pages of room`);
    }
    this.took(c, addrs, 0, n);
  }

  /** Records addresses addrs[from, from + n) for the next n pages of chunk c (their data in place). */
  private took(c: { frame: Buffer; n: number; cap: number }, addrs: ArrayLike<number>, from: number, n: number): void {
    for (let k = 0; k < n; k++) {
      const a = addrs[from + k]!;
      if (a <= this.lastAddr) throw new Error(`page 0x${a.toString(16)} is not after 0x${this.lastAddr.toString(16)}`);
      this.lastAddr = a;
      writeChunkAddress(c.frame, c.n + k, a);
    }
    c.n += n;
    this.counts.dataPages += n;
    if (this.pending > 0) this.pending = Math.max(0, this.pending - n);
    if (c.n === c.cap) this.flushChunk();
  }

  addZero(start: number, pages: number): void {
    this.addRun(FrameType.ZeroRuns, start, pages);
    this.counts.zeroPages += pages;
  }
  addFile(start: number, pages: number): void {
    this.addRun(FrameType.FileRuns, start, pages);
    this.counts.filePages += pages;
  }
  addParent(start: number, pages: number): void {
    this.addRun(FrameType.ParentRuns, start, pages);
    this.counts.parentPages += pages;
  }

  endVma(): void {
    const vma = this.requireVma();
    this.flushChunk();
    this.pending = 0;
    const perFrame = Math.floor((this.maxFrameBytes - HEADER_BYTES - 4) / 16);
    for (const k of RUN_KINDS) {
      const runs = this.runs.get(k)!;
      for (let i = 0; i < runs.length; i += perFrame) {
        this.push(encodeRuns(this.opts.snapshotId, this.seq, k, runs.slice(i, i + perFrame)));
      }
    }
    this.push(encodeVmaEnd(this.opts.snapshotId, this.seq, vma.index));
    this.vma = undefined;
  }

  /** Ends the snapshot with its counts and the digest over every earlier frame's header. */
  end(): SnapshotEnd {
    if (this.vma) throw new Error('end inside a VMA');
    this.release(true);
    const end: SnapshotEnd = {
      vmaCount: this.vmaCount,
      ...this.counts,
      frameCount: this.seq,
      digest: this.digest.copy().digest(),
    };
    this.push(encodeSnapshotEnd(this.opts.snapshotId, this.seq, end));
    this.finished = true;
    return end;
  }

  /** Ends the stream as aborted; no consumer may take it as complete. Safe to call at any point. */
  abort(code: string, message: string): void {
    if (this.finished) return;
    this.chunk = undefined;
    try {
      this.release(true);
    } finally {
      this.drop();
    }
    this.push(encodeAbort(this.opts.snapshotId, this.seq, code, message));
    this.finished = true;
  }

  private addRun(kind: RunKind, start: number, pages: number): void {
    this.requireVma();
    const runs = this.runs.get(kind)!;
    const last = runs[runs.length - 1];
    if (last && last.start + last.pages * this.pageSize === start) last.pages += pages;
    else runs.push({ start, pages });
  }

  private flushChunk(): void {
    const c = this.chunk;
    if (!c) return;
    if (c.n === 0) {
      // Opened, then every page dropped (zero, same as parent): a full chunk waits for the next pages,
      // one laid out for this VMA's announced pages must not be filled by another VMA's.
      if (c.cap !== this.chunkCap) this.chunk = undefined;
      return;
    }
    this.chunk = undefined;
    let frame = c.frame;
    if (c.n < c.cap) {
      // A last chunk shorter than laid out for: re-lay it at its exact size (addresses then data).
      frame = Buffer.allocUnsafe(pageChunkBytes(c.n, this.pageSize));
      c.frame.copy(frame, 0, 0, HEADER_BYTES + 8 + c.n * 8);
      frame.writeUInt32LE(c.n, HEADER_BYTES);
      c.frame.copy(frame, HEADER_BYTES + 8 + c.n * 8, c.dataOffset, c.dataOffset + c.n * this.pageSize);
      this.opts.pool?.give(c.frame);
    }
    const sealer = this.opts.sealer;
    if (!sealer || frame.length < SEAL_INLINE_BYTES) {
      this.push(sealFrame(frame, FrameType.PageChunk, this.seq, this.opts.snapshotId));
      return;
    }
    writeHeader(frame, FrameType.PageChunk, this.seq, this.opts.snapshotId);
    const ticket = sealer.submit(frame);
    if (ticket < 0) sealFrame(frame, FrameType.PageChunk, this.seq, this.opts.snapshotId); // the ring is full
    this.push(frame, ticket);
    this.release(false);
  }

  /**
   * Emits queued frames in order: those whose CRC is ready, and all of them when `wait` (or down to
   * MAX_SEALING chunks still being sealed).
   */
  private release(wait: boolean): void {
    const q = this.queue;
    while (q.length > 0) {
      const { frame, ticket } = q[0]!;
      if (ticket >= 0 && !wait && this.sealing <= MAX_SEALING && !this.opts.sealer!.ready(ticket)) break;
      // Off the queue before the emit, which may throw: a frame is never finished or emitted twice.
      q.shift();
      if (ticket >= 0) {
        this.sealing--;
        this.opts.sealer!.finish(ticket);
      }
      this.emit(frame);
    }
  }

  /** Drops what is queued (the emit failed): each CRC ticket is still finished, freeing its slot. */
  private drop(): void {
    for (const { ticket } of this.queue.splice(0)) if (ticket >= 0) this.opts.sealer!.finish(ticket);
    this.sealing = 0;
  }

  private requirePagesVma(): void {
    const vma = this.requireVma();
    if (vma.flags & (VmaFlag.NoContents | VmaFlag.SharedElsewhere)) throw new Error(`VMA ${vma.index} carries no pages`);
  }

  private requireVma(): VmaHeader {
    if (!this.vma) throw new Error('no VMA is open');
    return this.vma;
  }

  /** Numbers a frame and emits it, or queues it behind chunks still being sealed (ticket: its CRC's). */
  private push(frame: Buffer, ticket = -1): void {
    if (this.finished) throw new Error('snapshot already ended');
    if (frame.length > this.maxFrameBytes) {
      // Only a header frame with long strings can get here, under a small configured maximum.
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `frame type ${frame[5]} is ${frame.length} bytes, more than the maximum frame of ${this.maxFrameBytes}`);
    }
    this.seq++;
    if (ticket < 0 && this.queue.length === 0) {
      this.emit(frame);
      return;
    }
    this.queue.push({ frame, ticket });
    if (ticket >= 0) this.sealing++;
  }

  private emit(frame: Buffer): void {
    this.digest.update(frame.subarray(0, HEADER_BYTES));
    this.opts.emit(frame);
  }
}
