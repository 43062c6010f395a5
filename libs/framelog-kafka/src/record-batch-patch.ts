import { crc32c } from '@pagevault/hashing';
import { createRequire } from 'node:module';
import { encoderParts, type EncoderInstance } from './encoder-patch';

/**
 * kafkajs's RecordBatch (protocol/recordBatch/v0) joins a batch twice on its way into a produce request:
 * `crc32C(batchBody.buffer)` joins the body to checksum it, and `writeBytes(batch.buffer)` joins it again
 * with its header. With large records kept by reference (encoder-patch.ts) those joins were two of the
 * three copies of every frame the agent sends. This RecordBatch builds the same bytes (tested against
 * kafkajs's) but computes the CRC32C over the referenced parts, chained, and nests the batch in the
 * request by reference; the socket write is then the only copy. Compressed batches (which pagevault
 * does not produce: frames are compressed one by one) go to kafkajs's own RecordBatch.
 *
 * The produce request (protocol/requests/produce/v3/request.js, used by v3 to v7) takes RecordBatch
 * from the module's exports when it is first required, so the patch must run before that, as the CRC
 * patch does; otherwise it is "too-late" and kafkajs's RecordBatch stays: still correct, only slower.
 */
export type RecordBatchPatchState = 'patched' | 'too-late';

const RECORD_BATCH_MODULE = 'kafkajs/src/protocol/recordBatch/v0/index.js';
const PRODUCE_MODULE = 'kafkajs/src/protocol/requests/produce/v3/request.js';

const req = createRequire(__filename);

/** kafkajs's 64-bit integer (src/utils/long), passed through untouched. */
interface Long {
  readonly __long?: never;
}
/** The Encoder methods RecordBatch uses (kafkajs has no types for its protocol modules). */
interface EncoderClass {
  new (): EncoderInstance & {
    writeInt8(v: number): EncoderClassInstance;
    writeInt16(v: number): EncoderClassInstance;
    writeInt32(v: number): EncoderClassInstance;
    writeUInt32(v: number): EncoderClassInstance;
    writeInt64(v: Long | number | string): EncoderClassInstance;
    writeArray(a: unknown[], type?: string): EncoderClassInstance;
    writeEncoder(e: EncoderInstance): EncoderClassInstance;
  };
}
type EncoderClassInstance = InstanceType<EncoderClass>;

export interface RecordBatchOptions {
  compression?: number;
  firstOffset?: Long;
  firstTimestamp?: number;
  maxTimestamp?: number;
  partitionLeaderEpoch?: number;
  lastOffsetDelta?: number;
  transactional?: boolean;
  producerId?: Long;
  producerEpoch?: number;
  firstSequence?: number;
  records?: unknown[];
}
type RecordBatchFn = (o: RecordBatchOptions) => Promise<EncoderInstance>;

// As in kafkajs's recordBatch/v0: magic 2; attributes are the codec (0 here), the timestamp type (0)
// and the transactional bit.
const MAGIC_BYTE = 2;
const TRANSACTIONAL_MASK = 16;

/** kafkajs's RecordBatch, uncompressed, with the CRC over the body's parts and the batch nested by reference. */
export function recordBatchByParts(original: RecordBatchFn): RecordBatchFn {
  const Encoder = req('kafkajs/src/protocol/encoder.js') as EncoderClass;
  const LongClass = req('kafkajs/src/utils/long') as { fromInt(n: number): Long; fromValue(n: number): Long };
  return async (o) => {
    const compression = o.compression ?? 0;
    if (compression !== 0) return original(o);
    const {
      firstOffset = LongClass.fromInt(0),
      firstTimestamp = Date.now(),
      maxTimestamp = Date.now(),
      partitionLeaderEpoch = 0,
      lastOffsetDelta = 0,
      transactional = false,
      producerId = LongClass.fromValue(-1),
      producerEpoch = 0,
      firstSequence = 0,
      records = [],
    } = o;
    const body = new Encoder()
      .writeInt16(transactional ? TRANSACTIONAL_MASK : 0)
      .writeInt32(lastOffsetDelta)
      .writeInt64(firstTimestamp)
      .writeInt64(maxTimestamp)
      .writeInt64(producerId)
      .writeInt16(producerEpoch)
      .writeInt32(firstSequence);
    if (records.every((v) => typeof v === typeof records[0])) body.writeArray(records, typeof records[0]);
    else body.writeArray(records);
    let crc = 0;
    for (const part of encoderParts(body)) crc = crc32c(part, crc);
    const batch = new Encoder().writeInt32(partitionLeaderEpoch).writeInt8(MAGIC_BYTE).writeUInt32(crc).writeEncoder(body);
    return new Encoder().writeInt64(firstOffset).writeInt32(batch.size()).writeEncoder(batch);
  };
}

let state: RecordBatchPatchState | undefined;

/** Idempotent; returns what happened the first time. Needs patchKafkajsEncoder() (parts by reference). */
export function patchKafkajsRecordBatch(): RecordBatchPatchState {
  if (state) return state;
  if (req.cache[req.resolve(PRODUCE_MODULE)]) return (state = 'too-late');
  const mod = req(RECORD_BATCH_MODULE) as { RecordBatch: RecordBatchFn };
  mod.RecordBatch = recordBatchByParts(mod.RecordBatch);
  return (state = 'patched');
}
