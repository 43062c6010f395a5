import { BatchingFrameProducer } from '../batching-frame-producer';
import { requirePositiveInt } from '../check-frames';
import {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_MAX_IN_FLIGHT_BYTES,
  type FrameConsumer,
  type FrameLog,
  type FrameProducer,
} from '../frame-log';
import { stderrJsonSink, type LogSink } from '../log-sink';
import { partitionForKey } from '../partition-for-key';
import { InProcessFrameConsumer } from './in-process-frame-consumer';
import { LogStore } from './log-store';

export interface InProcessFrameLogOptions {
  partitions: number;
  maxFrameBytes?: number;
  /** Most bytes in one delivered batch (at least one record is always delivered). Default 8 MiB. */
  maxBatchBytes?: number;
  /** Pause before redelivering a batch whose handler threw. Default 200 ms. */
  retryBackoffMs?: number;
  /** Diagnostics; default: warn and worse as JSON lines on stderr. */
  log?: LogSink;
  /**
   * Retained frame bytes kept in memory; past it frames go to an unlinked spill file per partition (in
   * `spillDir`, default the OS temp directory) and are read back when delivered. Default: unbounded.
   */
  memoryBytes?: number;
  spillDir?: string;
}

/**
 * The embedded frame log: the same semantics as the Kafka topic (stable key → partition, int64-string
 * offsets, per-group committed offsets, redelivery from the committed offset, bounded producer window)
 * in one process's memory. Nothing survives the process, so a crash loses uncommitted frames along with
 * their producer; replay is the caller's business, as with Kafka.
 *
 * Memory bound: producers hold at most their window; the log retains every record that some group has
 * not yet committed past (LogStore) — a whole snapshot, as the compactor commits after its manifest — but
 * holds at most `memoryBytes` of them in memory: the rest wait in a spill file, as Kafka keeps them on disk.
 */
export class InProcessFrameLog implements FrameLog {
  readonly maxFrameBytes: number;
  readonly partitions: number;
  private readonly store: LogStore;
  private readonly maxBatchBytes: number;
  private readonly retryBackoffMs: number;
  private readonly log: LogSink;
  private ackHold: Promise<void> | undefined;

  constructor(opts: InProcessFrameLogOptions) {
    this.partitions = requirePositiveInt('partitions', opts.partitions);
    this.maxFrameBytes = requirePositiveInt('maxFrameBytes', opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.maxBatchBytes = requirePositiveInt('maxBatchBytes', opts.maxBatchBytes ?? 8 * 1_048_576);
    this.retryBackoffMs = opts.retryBackoffMs ?? 200;
    this.log = opts.log ?? stderrJsonSink('warn');
    this.store = new LogStore(this.partitions, {
      ...(opts.memoryBytes !== undefined ? { memoryBytes: opts.memoryBytes } : {}),
      ...(opts.spillDir !== undefined ? { spillDir: opts.spillDir } : {}),
    });
  }

  producer(opts: { maxInFlightBytes?: number } = {}): FrameProducer {
    return new BatchingFrameProducer({
      maxFrameBytes: this.maxFrameBytes,
      maxInFlightBytes: opts.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES,
      maxBatchBytes: this.maxBatchBytes,
      maxRequestBytes: this.maxBatchBytes,
      partitionOf: (key) => partitionForKey(key, this.partitions),
      transmit: async (frames) => {
        this.store.append(frames);
        await this.ackHold;
      },
    });
  }

  consumer(groupId: string): FrameConsumer {
    return new InProcessFrameConsumer(this.store, this.store.group(groupId), {
      maxBatchBytes: this.maxBatchBytes,
      retryBackoffMs: this.retryBackoffMs,
      log: this.log,
    });
  }

  /** Nothing to create: the partitions exist from construction. */
  async ensureTopic(): Promise<void> {
    return undefined;
  }

  async endOffsets(): Promise<Map<number, string>> {
    return new Map(Array.from({ length: this.partitions }, (_, p) => [p, String(this.store.end(p))]));
  }

  /** Bytes of records kept because some group has not committed past them (in memory or spilled). */
  retainedBytes(): number {
    return this.store.retainedBytes();
  }

  /** Bytes of retained records held in memory. */
  memoryRetainedBytes(): number {
    return this.store.memoryRetainedBytes();
  }

  /** Frees the spill files. The log must not be used afterwards. */
  close(): void {
    this.store.close();
  }

  /**
   * Withholds acknowledgements from this log's producers until the returned function is called, as a
   * slow replica would; records are still appended and readable. For tests of backpressure and flush().
   */
  holdAcks(): () => void {
    let release!: () => void;
    const hold = new Promise<void>((resolve) => (release = resolve));
    this.ackHold = hold;
    return () => {
      if (this.ackHold === hold) this.ackHold = undefined;
      release();
    };
  }
}
