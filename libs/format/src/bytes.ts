import { ErrorCodes, PvError } from '@pagevault/errors';
import { MAX_STRING_BYTES } from './constants';

const TWO_32 = 0x1_0000_0000;
/** Strict: a string that is not valid UTF-8 would decode lossily and re-encode to other bytes. */
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Sequential little-endian writer over a preallocated buffer. */
export class ByteWriter {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  u8(v: number): void {
    this.buf[this.pos++] = v;
  }
  u16(v: number): void {
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
  }
  u32(v: number): void {
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
  }
  /** Unsigned 64-bit from a non-negative integer number (exact for page-aligned addresses). */
  u64(v: number): void {
    const hi = Math.floor(v / TWO_32);
    this.buf.writeUInt32LE(v - hi * TWO_32, this.pos);
    this.buf.writeUInt32LE(hi, this.pos + 4);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  str(s: Buffer): void {
    this.u16(s.length);
    this.bytes(s);
  }
}

/** Encodes a string for ByteWriter.str, refusing what does not fit its u16 length. */
export function utf8(s: string, field: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  if (b.length > MAX_STRING_BYTES) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `${field} is ${b.length} bytes, more than ${MAX_STRING_BYTES}`);
  }
  return b;
}

/** Bounded little-endian reader: every read checks the remaining length and throws PV_FRAME_MALFORMED. */
export class ByteReader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
    readonly what: string,
  ) {
    this.pos = start;
  }

  need(n: number, field: string): void {
    if (n < 0 || this.pos + n > this.end) {
      throw new PvError(ErrorCodes.FRAME_MALFORMED, `${this.what}: ${field} runs past the end of the frame`, {
        details: { field, offset: this.pos, needed: n, available: this.end - this.pos },
      });
    }
  }
  u8(field: string): number {
    this.need(1, field);
    return this.buf[this.pos++]!;
  }
  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16LE(this.pos);
    this.pos += 2;
    return v;
  }
  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }
  /** u64 as a number; values above 2^53 that are not exactly representable are rejected. */
  u64(field: string): number {
    this.need(8, field);
    const lo = this.buf.readUInt32LE(this.pos);
    const hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
    const v = hi * TWO_32 + lo;
    if (hi >= 0x20_0000 && lo % 4096 !== 0) {
      throw new PvError(ErrorCodes.FRAME_MALFORMED, `${this.what}: ${field} is too large to be exact`);
    }
    return v;
  }
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
  str(field: string): string {
    const n = this.u16(field);
    const b = this.bytes(n, field);
    try {
      return UTF8.decode(b);
    } catch {
      throw new PvError(ErrorCodes.FRAME_MALFORMED, `${this.what}: ${field} is not valid UTF-8`, { details: { field } });
    }
  }
  done(): void {
    if (this.pos !== this.end) {
      throw new PvError(ErrorCodes.FRAME_MALFORMED, `${this.what}: ${this.end - this.pos} trailing bytes`);
    }
  }
}
