import { BatchingFrameProducer, DEFAULT_MAX_IN_FLIGHT_BYTES, partitionForKey } from '@pagevault/framelog';
import { CompressionTypes, Partitioners, type Kafka } from 'kafkajs';
import { toLogError } from './kafka-errors';
import { RECORD_OVERHEAD_BYTES, type ResolvedKafkaOptions } from './kafka-options';

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
): BatchingFrameProducer {
  const producer = kafka.producer({
    idempotent: true, // acks=-1 (all in-sync replicas), a producer id and per-partition sequence numbers
    maxInFlightRequests: 5, // the idempotence limit; kafkajs's broker lock keeps one produce in flight
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner, // unused: every message names its partition
    retry: { retries: o.retries },
  });
  let connecting: Promise<void> | undefined;
  const connect = () =>
    (connecting ??= producer.connect().catch((e: unknown) => {
      connecting = undefined;
      throw toLogError(e, `connecting producer for topic ${o.topic}`, o.brokers, { topic: o.topic });
    }));

  return new BatchingFrameProducer({
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
          compression: CompressionTypes.None, // page data does not compress; the compactor uses zstd
          messages: frames.map((f) => ({ key: f.key, value: f.value, partition: f.partition })),
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
}
