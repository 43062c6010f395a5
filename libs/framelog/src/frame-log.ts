/**
 * The frame log port: an ordered, partitioned, durable log of frames between the agent (producer) and
 * the compactor (consumer group). Adapters: InProcessFrameLog (embedded mode) and KafkaFrameLog.
 * Every adapter passes the conformance suite in ./conformance.ts.
 */

/** One record of the log: one opaque frame under the key of its snapshot. */
export interface FrameRecord {
  /** The snapshot id in hex. All records of one key are on one partition, in the order they were sent. */
  key: string;
  value: Buffer;
  partition: number;
  /** Kafka offsets are int64: decimal strings, never numbers. */
  offset: string;
  /** The record's headers, when its producer gave it any (see FrameProducer.send). */
  headers?: RecordHeaders | undefined;
}

/** Record headers (Kafka's), as text. Frames carry none; dead letters say where they came from and why. */
export type RecordHeaders = Readonly<Record<string, string>>;

/**
 * Called by a producer once it holds no reference to some frames anymore, so the sender may fill their
 * buffers again; it may never be called. The spool calls it when it wrote them to its file, the in-process
 * log when it spilled them (frames it keeps in memory are the log's), the Kafka adapter once acknowledged.
 */
export type FramesDone = (frames: Buffer[]) => void;

export interface FrameProducer {
  /**
   * Queues frames for key in order. Resolves when they are accepted into the bounded in-flight window
   * (backpressure: awaits while the window holds maxInFlightBytes of unacknowledged frames). Rejects
   * with PV_FRAME_TOO_LARGE before queueing anything if one frame exceeds the log's maxFrameBytes.
   * The frames become the producer's; see FramesDone for `done`. `headers` go on every record of the
   * call; they count against the batch limits, not against maxFrameBytes (a record has 4 KiB of room
   * beside its frame for key and headers: DEFAULT_MAX_FRAME_BYTES).
   */
  send(key: string, frames: Buffer[], done?: FramesDone, headers?: RecordHeaders): Promise<void>;
  /** Resolves when everything sent so far is acknowledged (acks=all); rejects with the first delivery error. */
  flush(): Promise<void>;
  /** Flushes, then releases the connection. Sends after close() reject. */
  close(): Promise<void>;
  /**
   * Optional: keep accepted frames local, transmitting nothing, until the returned function is called
   * (a spooling producer lets a frozen capture have the CPU). flush() must not be called while held.
   */
  hold?(): () => void;
}

export interface FrameBatch {
  partition: number;
  /** Records of one partition in offset order. */
  records: FrameRecord[];
}

export interface BatchControl {
  /**
   * Commits nextOffset (the offset of the first record NOT yet durable downstream) for partition.
   * The only way offsets move: adapters never auto-commit.
   */
  commit(partition: number, nextOffset: string): Promise<void>;
  /** Tells the group this member is alive during a long batch. */
  heartbeat(): Promise<void>;
  /** True once the batch's partition was revoked or the consumer is stopping: abandon the batch. */
  isStale(): boolean;
}

export interface FrameConsumerHandlers {
  /**
   * Called with records of one partition in offset order; no concurrent calls for the same partition.
   * If it throws, the partition is delivered again from its committed offset, after a pause: records
   * after that offset come again, those of earlier calls included.
   */
  onBatch(batch: FrameBatch, ctl: BatchControl): Promise<void>;
  /**
   * Partitions were revoked/assigned (rebalance): the consumer must drop in-memory state of revoked
   * partitions. Delivery of every assigned partition then restarts from its committed offset, so records
   * after it may be delivered again.
   */
  onAssign?(partitions: number[]): void | Promise<void>;
}

export interface FrameConsumer {
  /** Joins the group and starts delivering; resolves once started (not when stopped). */
  start(h: FrameConsumerHandlers): Promise<void>;
  pause(): void;
  resume(): void;
  /** Lets the batch in progress finish, then leaves the group. */
  stop(): Promise<void>;
  /** Committed offsets of this consumer's group by partition (partitions never committed are absent). */
  committed(): Promise<Map<number, string>>;
}

export interface FrameLog {
  producer(opts?: { maxInFlightBytes?: number }): FrameProducer;
  /** Consumption starts at the group's last committed offset, or at the earliest record. */
  consumer(groupId: string): FrameConsumer;
  /** Creates the log (topic) with its configured partition count if missing, and checks it if present. */
  ensureTopic(): Promise<void>;
  /** The next offset to be written, per partition (the high watermark): a group's lag is this minus its committed offsets. */
  endOffsets(): Promise<Map<number, string>>;
  /** Largest frame send() accepts, in bytes. */
  readonly maxFrameBytes: number;
}

/** Fits one record under Kafka's default max.message.bytes (1 MiB + 12), with room for key and headers. */
export const DEFAULT_MAX_FRAME_BYTES = 1_048_576 - 4096;

/** Default producer window: bytes accepted by send() and not yet acknowledged. */
export const DEFAULT_MAX_IN_FLIGHT_BYTES = 16 * 1_048_576;
