import {
  DEFAULT_MAX_FRAME_BYTES,
  requirePositiveInt,
  stderrJsonSink,
  type LogLevel,
  type LogSink,
} from '@pagevault/framelog';
import { ErrorCodes, PvError } from '@pagevault/errors';
import type { ISocketFactory } from 'kafkajs';

export interface KafkaFrameLogOptions {
  /** host:port of the bootstrap brokers. */
  brokers: string[];
  clientId: string;
  topic: string;
  /** Partition count; ensureTopic() creates the topic with it and refuses a topic with another count. */
  partitions: number;
  /** Replication factor for ensureTopic(); use 3 on a real cluster. Default 1. */
  replicationFactor?: number;
  /**
   * retention.ms of a topic ensureTopic() creates (an existing topic keeps its own). Frames are transient:
   * once compacted they live in the object store, and a topic left at the broker's default (7 days)
   * keeps a week of every snapshot's bytes on the brokers' disks. Undefined: the broker's default.
   */
  retentionMs?: number;
  /** Largest frame; default 1 MiB − 4 KiB, one frame per record under max.message.bytes (1 MiB + 12). */
  maxFrameBytes?: number;
  /** Most bytes of one record batch (one partition of one produce request), key and record overhead included. */
  maxBatchBytes?: number;
  /** Most bytes of one produce request over all partitions. Default 16 MiB. */
  maxRequestBytes?: number;
  connectionTimeoutMs?: number;
  requestTimeoutMs?: number;
  /**
   * Produce and connection retries before a delivery error: about a minute of backoff (a broker restart
   * is ridden out), one to two minutes with the requests' own timeouts (measured: an agent job failed 51-65
   * s after it began with Kafka down, 2 min after Kafka stopped under a running one). Default 8.
   */
  retries?: number;
  sessionTimeoutMs?: number;
  heartbeatIntervalMs?: number;
  /** Partitions whose batches may be processed at the same time by one consumer. Default 1. */
  partitionsConsumedConcurrently?: number;
  /** Receives kafkajs's and the adapter's diagnostics; default: warn and worse as JSON lines on stderr. */
  log?: LogSink;
  /** Least severe level passed to `log`. Default 'warn'. */
  logLevel?: LogLevel;
  /**
   * 'zstd' (default): a frame goes as a zstd frame when that makes it a third of its size or less (see
   * FrameCompressor); consumers take both forms whatever this says. 'none': frames go as they are.
   */
  compression?: 'zstd' | 'none';
  /** kafkajs socket factory (TLS setups, tests that stall the network). */
  socketFactory?: ISocketFactory;
}

export type ResolvedKafkaOptions = Required<Omit<KafkaFrameLogOptions, 'socketFactory' | 'retentionMs'>> &
  Pick<KafkaFrameLogOptions, 'socketFactory' | 'retentionMs'>;

/** Record batch header (61) plus slack; Kafka's default max.message.bytes is 1 MiB + 12. */
const DEFAULT_MAX_BATCH_BYTES = 1_048_576 - 512;

export function resolveOptions(o: KafkaFrameLogOptions): ResolvedKafkaOptions {
  if (
    !Array.isArray(o.brokers) ||
    o.brokers.length === 0 ||
    o.brokers.some((b) => !/^[^:\s]+:\d+$/.test(b))
  ) {
    throw new PvError(
      ErrorCodes.CONFIG_INVALID,
      `Kafka brokers must be host:port entries, got ${JSON.stringify(o.brokers)}`,
    );
  }
  for (const [name, value] of [
    ['clientId', o.clientId],
    ['topic', o.topic],
  ] as const) {
    if (typeof value !== 'string' || value.length === 0)
      throw new PvError(ErrorCodes.CONFIG_INVALID, `Kafka ${name} must be a non-empty string`);
  }
  const r: ResolvedKafkaOptions = {
    brokers: [...o.brokers],
    clientId: o.clientId,
    topic: o.topic,
    partitions: requirePositiveInt('partitions', o.partitions),
    replicationFactor: requirePositiveInt('replicationFactor', o.replicationFactor ?? 1),
    maxFrameBytes: requirePositiveInt('maxFrameBytes', o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES),
    maxBatchBytes: requirePositiveInt('maxBatchBytes', o.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES),
    maxRequestBytes: requirePositiveInt('maxRequestBytes', o.maxRequestBytes ?? 16 * 1_048_576),
    connectionTimeoutMs: requirePositiveInt('connectionTimeoutMs', o.connectionTimeoutMs ?? 3_000),
    requestTimeoutMs: requirePositiveInt('requestTimeoutMs', o.requestTimeoutMs ?? 15_000),
    retries: requirePositiveInt('retries', o.retries ?? 8),
    sessionTimeoutMs: requirePositiveInt('sessionTimeoutMs', o.sessionTimeoutMs ?? 30_000),
    heartbeatIntervalMs: requirePositiveInt('heartbeatIntervalMs', o.heartbeatIntervalMs ?? 3_000),
    partitionsConsumedConcurrently: requirePositiveInt(
      'partitionsConsumedConcurrently',
      o.partitionsConsumedConcurrently ?? 1,
    ),
    log: o.log ?? stderrJsonSink(o.logLevel ?? 'warn'),
    logLevel: o.logLevel ?? 'warn',
    compression: o.compression ?? 'zstd',
    socketFactory: o.socketFactory,
    retentionMs: o.retentionMs === undefined ? undefined : requirePositiveInt('retentionMs', o.retentionMs),
  };
  if (r.compression !== 'zstd' && r.compression !== 'none') {
    throw new PvError(ErrorCodes.CONFIG_INVALID, `Kafka compression must be zstd or none, got ${String(r.compression)}`);
  }
  if (r.maxFrameBytes + RECORD_OVERHEAD_BYTES + 256 > r.maxBatchBytes) {
    throw new PvError(
      ErrorCodes.CONFIG_INVALID,
      `maxFrameBytes ${r.maxFrameBytes} leaves no room for one frame in a record batch of maxBatchBytes ${r.maxBatchBytes}`,
    );
  }
  return r;
}

/** Upper bound of a record's bytes besides key and value (length, attributes, deltas, varints, headers). */
export const RECORD_OVERHEAD_BYTES = 32;

/**
 * The producer's and the client's (connecting) retry backoff: kafkajs's production defaults, written out
 * because kafkajs takes 50 ms-1 s steps instead when NODE_ENV is 'test', and the retry budget documented
 * above must hold wherever it runs.
 */
export const RETRY_BACKOFF = { initialRetryTime: 300, maxRetryTime: 30_000, factor: 0.2, multiplier: 2 } as const;
