import { ErrorCodes, PvError } from '@pagevault/errors';
import { checkFrames, requirePositiveInt } from './check-frames';
import type { FrameProducer, FramesDone, RecordHeaders } from './frame-log';
import { Signal } from './signal';

/** A frame on its way to the log, with its partition already chosen. */
export interface OutboundFrame {
  key: string;
  value: Buffer;
  partition: number;
  /** The sender's FramesDone: transmit() calls it once nothing references `value` anymore, if ever. */
  done?: FramesDone | undefined;
  headers?: RecordHeaders | undefined;
}

export interface BatchingFrameProducerOptions {
  maxFrameBytes: number;
  /** The window: bytes accepted by send() and not yet acknowledged. */
  maxInFlightBytes: number;
  /** Most bytes of one partition in one transmit() call (one record batch; Kafka's max.message.bytes). */
  maxBatchBytes: number;
  /** Most bytes of one transmit() call over all partitions (one produce request). */
  maxRequestBytes: number;
  /** Bytes a record costs besides its value and key, counted against the two limits above. Default 0. */
  recordOverheadBytes?: number;
  partitionOf(key: string): number;
  /**
   * Writes frames in the given order and resolves once all are acknowledged. Called one call at a time,
   * so frames are written in the order they were accepted, retries included.
   */
  transmit(frames: OutboundFrame[]): Promise<void>;
  /** Releases the adapter's connection; called once by close(). */
  disconnect?(): Promise<void>;
}

/**
 * The producer half shared by the adapters: validation, the bounded window, batching and ordering.
 *
 * Memory bound: frames are held from the moment send() accepts them until transmit() acknowledges
 * them, and send() accepts a frame only while the held bytes plus that frame stay within
 * maxInFlightBytes (a frame larger than the whole window is accepted alone into an empty window).
 * Frames not yet accepted stay in the caller's array; send() is pending meanwhile.
 */
export class BatchingFrameProducer implements FrameProducer {
  private readonly queue: OutboundFrame[] = [];
  private inFlight = 0;
  private accepted = 0;
  private acknowledged = 0;
  private admissions: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private closed = false;
  private pumping = false;
  private readonly progress = new Signal();

  constructor(private readonly opts: BatchingFrameProducerOptions) {
    requirePositiveInt('maxFrameBytes', opts.maxFrameBytes);
    requirePositiveInt('maxInFlightBytes', opts.maxInFlightBytes);
    requirePositiveInt('maxBatchBytes', opts.maxBatchBytes);
    requirePositiveInt('maxRequestBytes', opts.maxRequestBytes);
  }

  /** Bytes accepted and not yet acknowledged (for metrics). */
  get inFlightBytes(): number {
    return this.inFlight;
  }

  async send(key: string, frames: Buffer[], done?: FramesDone, headers?: RecordHeaders): Promise<void> {
    if (this.closed)
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `frame producer is closed (snapshot ${key})`);
    if (this.failure) throw this.failure;
    checkFrames(key, frames, this.opts.maxFrameBytes);
    const partition = this.opts.partitionOf(key);
    // Concurrent send() calls are admitted one after the other, in call order.
    const admitted = this.admissions.then(() => this.admit(key, partition, frames, done, headers));
    this.admissions = admitted.catch(() => undefined);
    return admitted;
  }

  async flush(): Promise<void> {
    await this.admissions;
    const target = this.accepted;
    while (this.acknowledged < target && !this.failure) {
      await this.progress.changedSince(this.progress.version);
    }
    if (this.failure) throw this.failure;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.flush();
    } finally {
      await this.opts.disconnect?.();
    }
  }

  private async admit(key: string, partition: number, frames: Buffer[], done: FramesDone | undefined, headers: RecordHeaders | undefined): Promise<void> {
    const max = this.opts.maxInFlightBytes;
    for (const value of frames) {
      while (this.inFlight > 0 && this.inFlight + value.length > max && !this.failure) {
        const seen = this.progress.version;
        this.pump();
        await this.progress.changedSince(seen);
      }
      if (this.failure) throw this.failure;
      this.inFlight += value.length;
      this.accepted += value.length;
      this.queue.push({ key, value, partition, done, headers });
    }
    this.pump();
  }

  private pump(): void {
    if (this.pumping || this.queue.length === 0) return;
    this.pumping = true;
    void this.drain();
  }

  /** One transmit() at a time; `pumping` drops in the same tick the queue is seen empty. */
  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && !this.failure) {
        const batch = this.takeBatch();
        const bytes = batch.reduce((n, f) => n + f.value.length, 0);
        try {
          await this.opts.transmit(batch);
        } catch (e) {
          this.failure ??= e instanceof Error ? e : new Error(String(e));
          this.queue.length = 0;
          return;
        }
        this.inFlight -= bytes;
        this.acknowledged += bytes;
        this.progress.notify();
      }
    } finally {
      this.pumping = false;
      if (this.failure) this.progress.notify();
    }
  }

  /** The longest queue prefix within the per-partition and per-request byte limits (at least one frame). */
  private takeBatch(): OutboundFrame[] {
    const perPartition = new Map<number, number>();
    let total = 0;
    let n = 0;
    const overhead = this.opts.recordOverheadBytes ?? 0;
    for (const f of this.queue) {
      const cost = f.value.length + Buffer.byteLength(f.key) + overhead + headerBytes(f.headers);
      const used = perPartition.get(f.partition) ?? 0;
      const fits = used + cost <= this.opts.maxBatchBytes && total + cost <= this.opts.maxRequestBytes;
      if (n > 0 && !fits) break;
      perPartition.set(f.partition, used + cost);
      total += cost;
      n++;
    }
    return this.queue.splice(0, n);
  }
}

/** Bytes of record headers on the wire, near enough (names and values, a varint length each). */
export function headerBytes(h: RecordHeaders | undefined): number {
  let n = 0;
  for (const k in h) n += Buffer.byteLength(k) + Buffer.byteLength(h[k]!) + 10;
  return n;
}
