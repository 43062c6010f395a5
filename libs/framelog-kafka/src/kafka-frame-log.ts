import { ErrorCodes, PvError } from '@pagevault/errors';
import type { FrameConsumer, FrameLog, FrameProducer } from '@pagevault/framelog';
import { Kafka, type Admin } from 'kafkajs';
import { patchKafkajsCrc32c } from './crc32c-patch';
import { patchKafkajsEncoder } from './encoder-patch';
import { patchKafkajsRecordBatch } from './record-batch-patch';
import { toLogError } from './kafka-errors';
import { KafkaFrameConsumer } from './kafka-frame-consumer';
import { createKafkaFrameProducer } from './kafka-frame-producer';
import { RETRY_BACKOFF, resolveOptions, type KafkaFrameLogOptions, type ResolvedKafkaOptions } from './kafka-options';
import { kafkaLogLevel, kafkajsLogCreator } from './kafkajs-log';

// Before any produce request loads kafkajs's record batch encoder (see crc32c-patch.ts).
const crc32cPatch = patchKafkajsCrc32c();
// Request encoding without zero-filling every buffer it grows (see encoder-patch.ts).
patchKafkajsEncoder();
// Record batches checksummed over their parts and nested by reference (see record-batch-patch.ts).
const recordBatchPatch = patchKafkajsRecordBatch();

/** The frame log on a Kafka topic, with kafkajs. One instance per topic; producers and consumers share its client. */
export class KafkaFrameLog implements FrameLog {
  readonly maxFrameBytes: number;
  private readonly o: ResolvedKafkaOptions;
  private readonly kafka: Kafka;
  private adminClient: Promise<Admin> | undefined;

  constructor(options: KafkaFrameLogOptions) {
    this.o = resolveOptions(options);
    this.maxFrameBytes = this.o.maxFrameBytes;
    this.kafka = new Kafka({
      clientId: this.o.clientId,
      brokers: this.o.brokers,
      connectionTimeout: this.o.connectionTimeoutMs,
      requestTimeout: this.o.requestTimeoutMs,
      logLevel: kafkaLogLevel[this.o.logLevel],
      logCreator: kafkajsLogCreator(this.o.log, this.o.logLevel),
      // Connecting goes through the client's retrier, not the producer's: the same budget for both, or a
      // broker that refuses connections (a restart) fails a send after the client's few quick retries.
      retry: { retries: this.o.retries, ...RETRY_BACKOFF },
      ...(this.o.socketFactory ? { socketFactory: this.o.socketFactory } : {}),
    });
    if (crc32cPatch !== 'patched') {
      this.o.log({
        level: 'warn',
        namespace: 'framelog.kafka',
        message:
          'kafkajs record batch encoder was loaded before @pagevault/framelog-kafka; CRC32C stays in JavaScript (slower)',
      });
    }
    if (recordBatchPatch !== 'patched') {
      this.o.log({
        level: 'warn',
        namespace: 'framelog.kafka',
        message: 'kafkajs produce request was loaded before @pagevault/framelog-kafka; record batches are copied twice more (slower)',
      });
    }
  }

  producer(opts: { maxInFlightBytes?: number } = {}): FrameProducer {
    return createKafkaFrameProducer(this.kafka, this.o, opts);
  }

  consumer(groupId: string): FrameConsumer {
    return new KafkaFrameConsumer(this.kafka, () => this.admin(), this.o, groupId);
  }

  /** Creates the topic with the configured partition count if missing; refuses one with another count. */
  async ensureTopic(): Promise<void> {
    const { topic, partitions, replicationFactor, brokers, retentionMs } = this.o;
    let existing: number;
    try {
      const admin = await this.admin();
      // Not kafkajs's waitForLeaders: it gives up on the UNKNOWN_TOPIC_OR_PARTITION that a KRaft broker
      // answers until a new topic reaches its metadata image (5 of 30 creations on Kafka 4.4).
      await admin.createTopics({
        topics: [{
          topic, numPartitions: partitions, replicationFactor,
          ...(retentionMs ? { configEntries: [{ name: 'retention.ms', value: String(retentionMs) }] } : {}),
        }],
        waitForLeaders: false,
      });
      existing = await this.leadersElected(admin);
    } catch (e) {
      throw toLogError(e, `ensuring topic ${topic}`, brokers, { topic });
    }
    if (existing !== partitions) {
      throw new PvError(
        ErrorCodes.CONFIG_INVALID,
        `Kafka topic ${topic} has ${existing} partitions but ${partitions} are configured; snapshots would land on other partitions than the key hash expects`,
        { details: { topic, existing, configured: partitions } },
      );
    }
  }

  async endOffsets(): Promise<Map<number, string>> {
    const deadline = Date.now() + this.o.requestTimeoutMs;
    for (;;) {
      try {
        const admin = await this.admin();
        const parts = await admin.fetchTopicOffsets(this.o.topic);
        return new Map(parts.map((p) => [p.partition, p.high]));
      } catch (e) {
        // A topic just created answers NOT_LEADER until its metadata settles: retriable, so retried.
        if (!(e as { retriable?: boolean }).retriable || Date.now() > deadline) {
          throw toLogError(e, `reading the end offsets of topic ${this.o.topic}`, this.o.brokers, { topic: this.o.topic });
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Waits until every partition of the topic has a leader; returns the partition count. */
  private async leadersElected(admin: Admin): Promise<number> {
    const deadline = Date.now() + this.o.requestTimeoutMs;
    for (;;) {
      try {
        const [meta] = (await admin.fetchTopicMetadata({ topics: [this.o.topic] })).topics;
        const parts = meta?.partitions ?? [];
        if (parts.length > 0 && parts.every((p) => p.leader >= 0)) return parts.length;
      } catch (e) {
        if (!(e as { retriable?: boolean }).retriable || Date.now() > deadline) throw e;
      }
      if (Date.now() > deadline) {
        throw new PvError(
          ErrorCodes.TIMEOUT,
          `Kafka topic ${this.o.topic} has no leader for every partition after ${this.o.requestTimeoutMs} ms`,
          {
            retriable: true,
            details: { topic: this.o.topic, brokers: this.o.brokers },
          },
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Disconnects the admin client (producers and consumers are closed and stopped by their owners). */
  async close(): Promise<void> {
    const admin = this.adminClient;
    this.adminClient = undefined;
    if (admin) await (await admin.catch(() => undefined))?.disconnect();
  }

  private admin(): Promise<Admin> {
    this.adminClient ??= (async () => {
      const admin = this.kafka.admin({ retry: { retries: 3 } });
      await admin.connect();
      return admin;
    })().catch((e: unknown) => {
      this.adminClient = undefined;
      throw toLogError(e, 'connecting Kafka admin client', this.o.brokers);
    });
    return this.adminClient;
  }
}
