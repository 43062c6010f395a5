import { createRequire } from 'node:module';

/**
 * kafkajs encodes a produce request through a chain of growable Encoders (record, records, batch body,
 * batch, partition, topic, request), each starting at 512 bytes and doubling with `Buffer.alloc`: a
 * 1 MiB frame was copied into a fresh, zero-filled 2 MiB buffer at every level, seven copies of every
 * byte sent, and the zero-fill alone was a tenth of the client's CPU (produce.bench.mjs profile).
 *
 * Two patches, the bytes on the wire identical (tested against the original encoder):
 *  - growth over `Buffer.allocUnsafe`: an Encoder only ever exposes bytes it has written itself;
 *  - large pieces by reference: a buffer of at least BIG bytes written into an Encoder, or an Encoder of
 *    at least BIG bytes written into another, is kept as a reference in a list of parts instead of being
 *    copied; `buffer` joins the parts once, when something needs the bytes in one piece (the record
 *    batch's CRC and its nesting, then the socket write; record-batch-patch.ts spares the first two, so
 *    a frame is copied once instead of seven times). Encoders only ever
 *    append, and kafkajs writes nothing into an Encoder once it is nested in another, so a referenced
 *    part never changes under its reader; a frame referenced here is the caller's until acknowledged.
 */
const ENCODER_MODULE = 'kafkajs/src/protocol/encoder.js';

/** Pieces at least this large are referenced, not copied. */
export const BIG = 64 * 1024;

export interface EncoderInstance {
  buf: Buffer;
  offset: number;
  /** Finished parts before buf[mark, offset); their total length. */
  parts?: Buffer[];
  partsBytes?: number;
  mark?: number;
  readonly buffer: Buffer;
  size(): number;
}
interface EncoderClass {
  nextPowerOfTwo(n: number): number;
  prototype: EncoderInstance & {
    ensureAvailable(this: EncoderInstance, length: number): void;
    writeBufferInternal(this: EncoderInstance, buffer: Buffer): void;
    writeEncoder(this: EncoderInstance, value: EncoderInstance): EncoderInstance;
    writeEncoderArray(this: EncoderInstance, value: EncoderInstance[]): EncoderInstance;
  };
}

let patched = false;

/**
 * The bytes an Encoder holds, in order, without joining them: its referenced parts, then what it wrote
 * last. Valid until the Encoder is written to again.
 */
export function encoderParts(e: EncoderInstance): Buffer[] {
  if (!e.parts?.length) return [e.buf.subarray(e.mark ?? 0, e.offset)];
  cut(e);
  return e.parts;
}

/** Ends the part being written in buf: what follows goes after it in the list. */
function cut(e: EncoderInstance): void {
  const mark = e.mark ?? 0;
  if (e.offset > mark) {
    e.parts!.push(e.buf.subarray(mark, e.offset));
    e.partsBytes! += e.offset - mark;
  }
  e.mark = e.offset;
}

function reference(e: EncoderInstance, part: Buffer): void {
  e.parts ??= [];
  e.partsBytes ??= 0;
  cut(e);
  e.parts.push(part);
  e.partsBytes += part.length;
}

/** Idempotent. Safe at any time: instances created before keep working, they only grow differently. */
export function patchKafkajsEncoder(): void {
  if (patched) return;
  const req = createRequire(__filename);
  const Encoder = req(ENCODER_MODULE) as EncoderClass;
  const proto = Encoder.prototype;
  const copyIn = function (this: EncoderInstance, buffer: Buffer): void {
    (proto.ensureAvailable as (this: EncoderInstance, n: number) => void).call(this, buffer.length);
    buffer.copy(this.buf, this.offset, 0);
    this.offset += buffer.length;
  };
  proto.ensureAvailable = function ensureAvailable(this: EncoderInstance, length: number): void {
    if (this.offset + length <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Encoder.nextPowerOfTwo(this.offset + length));
    this.buf.copy(grown, 0, 0, this.offset);
    this.buf = grown; // parts already cut from the old buffer keep it alive, unchanged
  };
  proto.writeBufferInternal = function writeBufferInternal(this: EncoderInstance, buffer: Buffer): void {
    if (buffer.length >= BIG) reference(this, buffer);
    else copyIn.call(this, buffer);
  };
  const writeOne = function (this: EncoderInstance, value: EncoderInstance): void {
    if (value == null || !Buffer.isBuffer(value.buf)) throw new Error('value should be an instance of Encoder');
    if (value.parts?.length && value.size() >= BIG) {
      cut(value);
      for (const p of value.parts) reference(this, p);
    } else {
      const b = value.buffer;
      if (b.length >= BIG) reference(this, b);
      else copyIn.call(this, b);
    }
  };
  proto.writeEncoder = function writeEncoder(this: EncoderInstance, value: EncoderInstance): EncoderInstance {
    writeOne.call(this, value);
    return this;
  };
  proto.writeEncoderArray = function writeEncoderArray(this: EncoderInstance, value: EncoderInstance[]): EncoderInstance {
    if (!Array.isArray(value) || value.some((v) => v == null || !Buffer.isBuffer(v.buf))) {
      throw new Error('all values should be an instance of Encoder[]');
    }
    for (const v of value) writeOne.call(this, v);
    return this;
  };
  proto.size = function size(this: EncoderInstance): number {
    return (this.partsBytes ?? 0) + this.offset - (this.mark ?? 0);
  };
  Object.defineProperty(proto, 'buffer', {
    configurable: true,
    get(this: EncoderInstance): Buffer {
      if (!this.parts?.length) return this.buf.subarray(this.mark ?? 0, this.offset);
      cut(this);
      // Joined once; the encoder then holds its bytes in one piece (and may go on appending to it).
      const joined = Buffer.concat(this.parts, this.partsBytes);
      this.parts = [];
      this.partsBytes = 0;
      this.buf = joined;
      this.offset = joined.length;
      this.mark = 0;
      return joined;
    },
  });
  patched = true;
}
