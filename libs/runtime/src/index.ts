import { ErrorCodes, PvError } from '@pagevault/errors';
import type { FrameLog, LogLevel } from '@pagevault/framelog';
import { InProcessFrameLog, stderrJsonSink, withSpool, type SpoolOptions } from '@pagevault/framelog';
import { KafkaFrameLog } from '@pagevault/framelog-kafka';
import { ConcurrencyLimitedObjectStore, DirectoryObjectStore, RetryingObjectStore, type ObjectStore } from '@pagevault/objstore';
import { S3ObjectStore } from '@pagevault/objstore-s3';

/** Where objects go: a directory (embedded default) or an S3 bucket (the fleet). */
export type StoreConfig =
  | { kind: 'dir'; dir: string }
  | { kind: 's3'; endpoint: string; bucket: string; region: string; accessKeyId: string; secretAccessKey: string; maxInFlight?: number };

/** How frames travel: in this process (embedded default) or through a Kafka topic. */
export type LogConfig =
  | { kind: 'memory'; partitions?: number; memoryBytes?: number; spillDir?: string }
  | {
      kind: 'kafka'; brokers: string[]; topic: string; partitions: number; clientId: string;
      /** Producers accept frames into a local spool (memory, then disk) while Kafka catches up. */
      spool?: SpoolOptions;
      /** Frames compressed one by one before Kafka (default zstd; consumers read either). */
      compression?: 'zstd' | 'none';
      /** Least level of kafkajs's own log lines written to stderr (default warn). */
      logLevel?: LogLevel;
      /** retention.ms of the topic if ensureTopic creates it (see retentionSetting); else the broker's default. */
      retentionMs?: number;
    };

/**
 * The spool part of a Kafka log configuration from its two settings (PV_SPOOL_DIR, PV_SPOOL_MEMORY_MIB):
 * frames wait on local disk in `dir` (default /var/tmp) once `memoryMiB` (default 64) are queued; `off`
 * ships straight to Kafka.
 */
export function spoolSetting(dir = '/var/tmp', memoryMiB: string | number = 64): { spool?: SpoolOptions } {
  const mib = memoryMiB === '' ? 64 : Number(memoryMiB);
  if (!Number.isInteger(mib) || mib < 0) {
    throw new PvError(ErrorCodes.CONFIG_INVALID, `PV_SPOOL_MEMORY_MIB must be a whole number of MiB (0 or more), not ${String(memoryMiB)}`);
  }
  return dir === 'off' ? {} : { spool: { dir, memoryBytes: mib * 1_048_576 } };
}

/** The frame topic's retention from its setting (PV_KAFKA_RETENTION_HOURS, default 72), checked. */
export function retentionSetting(hours: string | number | undefined): { retentionMs: number } {
  const h = hours === undefined || hours === '' ? 72 : Number(hours);
  if (!Number.isInteger(h) || h <= 0) throw new PvError(ErrorCodes.CONFIG_INVALID, `PV_KAFKA_RETENTION_HOURS must be a positive whole number of hours, not ${String(hours)}`);
  return { retentionMs: h * 3_600_000 };
}

/** Builds the object store for a configuration: S3 behind retries with backoff and a bound on requests in flight. */
export function openObjectStore(c: StoreConfig): ObjectStore {
  if (c.kind === 'dir') return new DirectoryObjectStore(c.dir);
  const max = c.maxInFlight ?? 16;
  const s3 = new S3ObjectStore({
    endpoint: c.endpoint, bucket: c.bucket, region: c.region, accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey,
    forcePathStyle: true, requestTimeoutMs: 120_000, idleTimeoutMs: 20_000, maxSockets: max,
  });
  // Retrying outside the limit: a request waiting out its backoff frees its slot. A store that accepts
  // and never answers fails an operation in about a minute (two or three idle timeouts), not twelve.
  return new RetryingObjectStore(new ConcurrencyLimitedObjectStore(s3, max), { attempts: 6, baseDelayMs: 100, maxDelayMs: 5_000, giveUpAfterMs: 40_000 });
}

/**
 * A log level from its environment value (PV_LOG_LEVEL), checked; the services' pino names are taken too
 * (trace as debug; fatal and silent as error).
 */
export function logLevel(v: string | undefined, fallback: LogLevel): LogLevel {
  if (v === undefined || v === '') return fallback;
  const named: Record<string, LogLevel> = { trace: 'debug', debug: 'debug', info: 'info', warn: 'warn', error: 'error', fatal: 'error', silent: 'error' };
  const l = named[v];
  if (!l) throw new PvError(ErrorCodes.CONFIG_INVALID, `PV_LOG_LEVEL must be one of ${Object.keys(named).join(', ')}, not ${v}`);
  return l;
}

/** The Kafka compression setting from its environment value (PV_KAFKA_COMPRESSION), checked. */
export function kafkaCompression(v: string | undefined): 'zstd' | 'none' | undefined {
  if (v === undefined || v === '') return undefined;
  if (v !== 'zstd' && v !== 'none') throw new PvError(ErrorCodes.CONFIG_INVALID, `PV_KAFKA_COMPRESSION must be zstd or none, not ${v}`);
  return v;
}

export function openFrameLog(c: LogConfig): FrameLog {
  if (c.kind === 'memory') {
    const { kind: _kind, partitions = 1, ...spill } = c;
    return new InProcessFrameLog({ partitions, ...spill });
  }
  const kafka = new KafkaFrameLog({
    brokers: c.brokers, topic: c.topic, partitions: c.partitions, clientId: c.clientId, ...(c.compression ? { compression: c.compression } : {}),
    ...(c.logLevel ? { logLevel: c.logLevel } : {}),
    ...(c.retentionMs ? { retentionMs: c.retentionMs } : {}),
  });
  // The spool's warnings are never muted with kafkajs's: a spool that cannot be written (full or
  // read-only disk) means a frozen target waits on Kafka, and whoever runs this has to hear of it.
  const spoolLevel = c.logLevel === undefined || c.logLevel === 'error' ? 'warn' : c.logLevel;
  return c.spool ? withSpool(kafka, { log: stderrJsonSink(spoolLevel), ...c.spool }) : kafka;
}
