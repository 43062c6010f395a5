import { BatchingFrameProducer, DEFAULT_MAX_IN_FLIGHT_BYTES, partitionForKey, type FrameProducer, type FramesDone, type RecordHeaders } from '@pagevault/framelog';
import { CompressionTypes, Partitioners, type Kafka } from 'kafkajs';
import { FrameCompressor } from './frame-compression';
import { toLogError } from './kafka-errors';
import { RECORD_OVERHEAD_BYTES, RETRY_BACKOFF, type ResolvedKafkaOptions } from './kafka-options';

/**
 * The Kafka producer: BatchingFrameProducer (window, batching, order) over one idempotent kafkajs
 * producer.
 *
 * Bounded bytes in flight: BatchingFrameProducer counts the bytes of every frame from the moment send()
 * accepts it until the produce request carrying it is acknowledged by all in-sync replicas, and
 * send() awaits (on a progress signal raised at each acknowledgement) while accepting the next frame
 * would take that count over maxInFlightBytes. So the producer never holds more than the window.
 *
 * Ordering: transmit() is called one request at a time. kafkajs's idempotent producer already
 * serialises produce requests per broker (its EOS manager holds a broker lock until the response), but
 * it rolls sequence numbers back when a request fails, so two concurrent send() calls could swap on a
 * retry; one request at a time rules that out. Frames queued meanwhile go out together in the next
 * request: one kafkajs send() and one promise per batch (up to maxBatchBytes per partition, one record
 * batch each, and maxRequestBytes per request), never one per frame.
 */
export function createKafkaFrameProducer(
  kafka: Kafka,
  o: ResolvedKafkaOptions,
  opts: { maxInFlightBytes?: number } = {},
): FrameProducer {
  const producer = kafka.producer({
    idempotent: true, // acks=-1 (all in-sync replicas), a producer id and per-partition sequence numbers
    maxInFlightRequests: 5, // the idempotence limit; kafkajs's broker lock keeps one produce in flight
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner, // unused: every message names its partition
    retry: { retries: o.retries, ...RETRY_BACKOFF },
  });
  let connecting: Promise<void> | undefined;
  const connect = () =>
    (connecting ??= producer.connect().catch((e: unknown) => {
      connecting = undefined;
      throw toLogError(e, `connecting producer for topic ${o.topic}`, o.brokers, { topic: o.topic });
    }));

  const batching = new BatchingFrameProducer({
    maxFrameBytes: o.maxFrameBytes,
    maxInFlightBytes: opts.maxInFlightBytes ?? DEFAULT_MAX_IN_FLIGHT_BYTES,
    maxBatchBytes: o.maxBatchBytes,
    maxRequestBytes: o.maxRequestBytes,
    recordOverheadBytes: RECORD_OVERHEAD_BYTES,
    partitionOf: (key) => partitionForKey(key, o.partitions),
    transmit: async (frames) => {
      await connect();
      try {
        await producer.send({
          topic: o.topic,
          acks: -1,
          timeout: o.requestTimeoutMs,
          compression: CompressionTypes.None, // frames are compressed one by one before (CompressingFrameProducer)
          messages: frames.map((f) => ({ key: f.key, value: f.value, partition: f.partition, ...(f.headers ? { headers: { ...f.headers } } : {}) })),
        });
        // Acknowledged: kafkajs encoded copies and keeps no reference to the values.
        for (const f of frames) f.done?.([f.value]);
      } catch (e) {
        throw toLogError(e, `producing ${frames.length} frames to topic ${o.topic}`, o.brokers, {
          topic: o.topic,
          snapshots: [...new Set(frames.map((f) => f.key))],
        });
      }
    },
    disconnect: async () => {
      if (connecting) await producer.disconnect();
    },
  });
  return o.compression === 'zstd' ? new CompressingFrameProducer(batching, o.maxFrameBytes) : batching;
}

/**
 * Compresses each frame (zstd, one frame per record value; see FrameCompressor) before the window and
 * the batches count it, so both hold compressed bytes. A compressed frame's buffer is given back to the
 * sender at once (the copy is what goes out); a frame sent as it is goes back once acknowledged.
 */
class CompressingFrameProducer implements FrameProducer {
  private readonly z = new FrameCompressor();

  constructor(
    private readonly inner: BatchingFrameProducer,
    private readonly maxFrameBytes: number,
  ) {}

  send(key: string, frames: Buffer[], done?: FramesDone, headers?: RecordHeaders): Promise<void> {
    // An oversized frame goes through as it is, for the inner producer to refuse the whole call.
    if (frames.some((f) => f.length > this.maxFrameBytes)) return this.inner.send(key, frames, done, headers);
    const out: Buffer[] = [];
    const spent: Buffer[] = [];
    const ours = new Set<Buffer>();
    for (const f of frames) {
      const c = this.z.compress(f);
      if (c) {
        ours.add(c);
        spent.push(f);
      }
      out.push(c ?? f);
    }
    if (spent.length) done?.(spent);
    const rest: FramesDone | undefined = done && ((fs) => {
      const theirs = fs.filter((f) => !ours.has(f));
      if (theirs.length) done(theirs);
    });
    return this.inner.send(key, out, rest, headers);
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
