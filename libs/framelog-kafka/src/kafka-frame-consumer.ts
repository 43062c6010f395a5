import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, PvError } from '@pagevault/errors';
import type { BatchControl, FrameConsumer, FrameConsumerHandlers, FrameRecord, RecordHeaders } from '@pagevault/framelog';
import type { Admin, Consumer, EachBatchPayload, IHeaders, Kafka } from 'kafkajs';
import { FrameInflater } from './frame-compression';
import { toLogError } from './kafka-errors';
import type { ResolvedKafkaOptions } from './kafka-options';

/**
 * A member of a Kafka consumer group. Offsets move only through ctl.commit (autoCommit off). After a
 * handled batch the adapter resolves its last offset, which moves kafkajs's fetch position but commits
 * nothing; after a rebalance kafkajs starts every assigned partition again from the committed offset,
 * and so does this adapter for a partition whose onBatch threw (rewind).
 */
/** Most inflated frame bytes handed to one onBatch call (a fetch holds at most 32 MiB as it came). */
const SLICE_BYTES = 32 * 1_048_576;
/** Heartbeat errors that say this member no longer owns its partitions (kafkajs protocol error types). */
const MEMBERSHIP_LOST = new Set(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS', 'FENCED_INSTANCE_ID']);

/** How long a partition whose handler threw waits before it is delivered again. */
const REWIND_PAUSE_MS = 1_000;

export class KafkaFrameConsumer implements FrameConsumer {
  private consumer: Consumer | undefined;
  private readonly inflater: FrameInflater;
  private paused = false;
  private assigned = new Set<number>();
  /** onAssign of the latest rebalance; batches wait for it so state is dropped before they arrive. */
  private assigning: Promise<void> = Promise.resolve();
  /** Partitions whose rewind could not seek (Kafka unreachable): nothing of them is handled until one does. */
  private readonly mustRewind = new Set<number>();

  constructor(
    private readonly kafka: Kafka,
    private readonly admin: () => Promise<Admin>,
    private readonly o: ResolvedKafkaOptions,
    readonly groupId: string,
  ) {
    this.inflater = new FrameInflater(o.maxFrameBytes);
  }

  async start(h: FrameConsumerHandlers): Promise<void> {
    if (this.consumer)
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `consumer of group ${this.groupId} already started`);
    const { o } = this;
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: o.sessionTimeoutMs,
      heartbeatInterval: o.heartbeatIntervalMs,
      // Memory bound: one fetch response holds at most maxBytes (several record batches of maximal
      // frames per partition); kafkajs hands it to eachBatch before fetching from that broker again.
      maxBytesPerPartition: Math.max(4 * o.maxBatchBytes, 8 * 1_048_576),
      maxBytes: 32 * 1_048_576,
      maxWaitTimeInMs: 500,
      allowAutoTopicCreation: false,
      retry: { retries: o.retries },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      const partitions = [...(payload.memberAssignment[o.topic] ?? [])].sort((a, b) => a - b);
      this.assigned = new Set(partitions);
      this.assigning = this.assigning
        .then(() => h.onAssign?.(partitions))
        .catch((e: unknown) => this.logHandlerError('onAssign', e));
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [o.topic], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: o.partitionsConsumedConcurrently,
        eachBatch: (payload) => this.eachBatch(h, payload),
      });
    } catch (e) {
      throw toLogError(e, `starting consumer group ${this.groupId} on topic ${o.topic}`, o.brokers, {
        group: this.groupId,
        topic: o.topic,
      });
    }
    if (this.paused) consumer.pause([{ topic: o.topic }]);
  }

  pause(): void {
    this.paused = true;
    this.consumer?.pause([{ topic: this.o.topic }]);
  }

  resume(): void {
    this.paused = false;
    this.consumer?.resume([{ topic: this.o.topic }]);
  }

  async stop(): Promise<void> {
    // disconnect() lets the batch in progress finish, then leaves the group.
    await this.consumer?.disconnect();
  }

  async committed(): Promise<Map<number, string>> {
    const { o } = this;
    try {
      const admin = await this.admin();
      const [topic] = await admin.fetchOffsets({ groupId: this.groupId, topics: [o.topic] });
      return new Map(
        (topic?.partitions ?? []).filter((p) => p.offset !== '-1').map((p) => [p.partition, p.offset]),
      );
    } catch (e) {
      throw toLogError(e, `reading committed offsets of group ${this.groupId}`, o.brokers, {
        group: this.groupId,
        topic: o.topic,
      });
    }
  }

  private async eachBatch(h: FrameConsumerHandlers, p: EachBatchPayload): Promise<void> {
    await this.assigning;
    const { batch } = p;
    // A batch fetched before pause() is left unresolved: kafkajs fetches it again after resume().
    if (this.paused || batch.isEmpty()) return;
    // kafkajs delivers again from where it had read, past what the handler has forgotten: seek first.
    if (this.mustRewind.has(batch.partition)) {
      return this.rewind(batch.partition, new Error('its handler failed earlier, and Kafka could not be asked for the committed offset then'));
    }
    // A member the coordinator dropped (a batch that ran past the session timeout) learns it only when it
    // next heartbeats: from then on its batch is stale, or it would go on committing what the partition's
    // new owner is replaying.
    let evicted = false;
    const isStale = () => evicted || !p.isRunning() || p.isStale() || !this.assigned.has(batch.partition);
    const ctl: BatchControl = {
      commit: (partition, nextOffset) => this.commit(partition, nextOffset),
      heartbeat: () =>
        p.heartbeat().catch((e: unknown) => {
          if (MEMBERSHIP_LOST.has((e as { type?: string }).type ?? '')) evicted = true;
          throw e;
        }),
      isStale,
    };
    // Compressed records are inflated a slice at a time (SLICE_BYTES of frames), so a fetch of
    // well-compressed frames never holds all of them inflated at once. Each handled slice moves the
    // fetch position past it; a pause between slices leaves the rest to be fetched again.
    const msgs = batch.messages;
    for (let i = 0; i < msgs.length; ) {
      const records: FrameRecord[] = [];
      for (let bytes = 0; i < msgs.length && (records.length === 0 || bytes < SLICE_BYTES); i++) {
        const m = msgs[i]!;
        const value = this.inflater.inflate(m.value ?? Buffer.alloc(0));
        bytes += value.length;
        records.push({ key: m.key ? m.key.toString('utf8') : '', value, partition: batch.partition, offset: m.offset, headers: textHeaders(m.headers) });
      }
      try {
        await h.onBatch({ partition: batch.partition, records }, ctl);
      } catch (e) {
        return this.rewind(batch.partition, e);
      }
      if (isStale()) return;
      p.resolveOffset(i === msgs.length ? batch.lastOffset() : records.at(-1)!.offset);
      if (this.paused) return;
    }
  }

  private async commit(partition: number, nextOffset: string): Promise<void> {
    const { o } = this;
    if (!/^\d+$/.test(nextOffset)) {
      throw new PvError(
        ErrorCodes.INVALID_ARGUMENT,
        `offset to commit must be a decimal string, got "${nextOffset}"`,
      );
    }
    try {
      if (!this.consumer)
        throw new PvError(ErrorCodes.INVALID_ARGUMENT, `consumer of group ${this.groupId} was never started`);
      await this.consumer.commitOffsets([{ topic: o.topic, partition, offset: nextOffset }]);
    } catch (e) {
      throw toLogError(
        e,
        `committing offset ${nextOffset} of partition ${partition} for group ${this.groupId}`,
        o.brokers,
        {
          group: this.groupId,
          topic: o.topic,
          partition,
          offset: nextOffset,
        },
      );
    }
  }

  /**
   * onBatch threw: its partition is fetched again from the committed offset, after a pause. Rethrowing
   * would not do: kafkajs retries from the offset resolved last, past slices the handler has handled and
   * has now forgotten (a snapshot whose begin was in them would go on without it). If even the seek
   * fails (Kafka is gone too), the error goes to kafkajs, which retries from that same resolved offset
   * once Kafka answers again (a restart of the consumer is not what it does): so the partition is marked,
   * and whatever kafkajs delivers of it next is not handled but rewound, until a seek succeeds.
   */
  private async rewind(partition: number, e: unknown): Promise<void> {
    const { o } = this;
    let offset: string;
    try {
      offset = (await this.committed()).get(partition) ?? (await this.earliest(partition));
      this.consumer!.seek({ topic: o.topic, partition, offset });
    } catch {
      this.mustRewind.add(partition);
      throw e;
    }
    this.mustRewind.delete(partition);
    o.log({
      level: 'error',
      namespace: 'framelog.kafka',
      message: `onBatch of group ${this.groupId} failed for partition ${partition}; delivering it again from offset ${offset}: ${e instanceof Error ? e.message : String(e)}`,
      extra: { group: this.groupId, topic: o.topic, partition, offset },
    });
    await sleep(REWIND_PAUSE_MS);
  }

  private async earliest(partition: number): Promise<string> {
    const admin = await this.admin();
    const p = (await admin.fetchTopicOffsets(this.o.topic)).find((x) => x.partition === partition);
    if (!p) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `topic ${this.o.topic} has no partition ${partition}`);
    return p.low;
  }

  private logHandlerError(handler: string, e: unknown): void {
    this.o.log({
      level: 'error',
      namespace: 'framelog.kafka',
      message: `${handler} of group ${this.groupId} failed: ${e instanceof Error ? e.message : String(e)}`,
      extra: { group: this.groupId, topic: this.o.topic },
    });
  }
}

/** A record's headers as text (the last value of a repeated name), or undefined when it has none. */
export function textHeaders(h: IHeaders | undefined): RecordHeaders | undefined {
  let out: Record<string, string> | undefined;
  for (const k in h) {
    const v = h[k];
    const last = Array.isArray(v) ? v.at(-1) : v;
    if (last !== undefined) (out ??= {})[k] = last.toString();
  }
  return out;
}
