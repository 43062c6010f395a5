import { ErrorCodes, PvError } from '@pagevault/errors';
import { ABSOLUTE_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES, HEADER_BYTES } from './constants';
import type { Frame } from './types';
import { decodeBody } from './v1/decode';
import { checkCrc, parseHeader } from './v1/header';

export interface DecodeOptions {
  /**
   * Skip the CRC32C check: only for a frame this process has just sealed itself (SnapshotWriter output
   * decoded for an in-process consumer), never for bytes that crossed a wire or a disk.
   */
  sealedHere?: boolean;
}

/**
 * Decodes one whole frame (one Kafka record). Checks, in order: header, exact length, CRC32C, payload.
 * Page data in the result is a view into `buf`, not a copy.
 */
export function decodeFrame(buf: Buffer, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES, opts: DecodeOptions = {}): Frame {
  const h = parseHeader(buf, Math.min(maxFrameBytes, ABSOLUTE_MAX_FRAME_BYTES));
  const total = HEADER_BYTES + h.length;
  if (buf.length < total) {
    throw new PvError(ErrorCodes.FRAME_TRUNCATED, `frame ${h.sequence} is ${buf.length} bytes, header says ${total}`, {
      details: { sequence: h.sequence },
    });
  }
  if (buf.length > total) {
    throw new PvError(ErrorCodes.FRAME_MALFORMED, `frame ${h.sequence} has ${buf.length - total} bytes after its end`);
  }
  if (!opts.sealedHere) checkCrc(buf, h);
  return { ...h, body: decodeBody(buf, h), raw: buf };
}

/**
 * Splits a byte stream (a stream-format file, a socket) into frames. Holds at most one frame's bytes,
 * never more than maxFrameBytes: a header announcing more is rejected before anything is buffered.
 */
export class FrameSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {}

  /** Feeds bytes; returns the complete frames they finish, decoded. */
  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.pendingBytes < HEADER_BYTES) return out;
      const head = this.peek(HEADER_BYTES);
      const h = parseHeader(head, Math.min(this.maxFrameBytes, ABSOLUTE_MAX_FRAME_BYTES));
      const total = HEADER_BYTES + h.length;
      if (this.pendingBytes < total) return out;
      out.push(decodeFrame(this.take(total), this.maxFrameBytes));
    }
  }

  /** Call at end of input: a partial frame left over is a truncated stream. */
  end(): void {
    if (this.pendingBytes > 0) {
      throw new PvError(ErrorCodes.FRAME_TRUNCATED, `stream ends inside a frame (${this.pendingBytes} bytes left)`);
    }
  }

  private peek(n: number): Buffer {
    if (this.pending[0]!.length < n) this.pending = [Buffer.concat(this.pending)];
    return this.pending[0]!.subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    const frame = all.subarray(0, n);
    const rest = all.subarray(n);
    this.pending = rest.length ? [rest] : [];
    this.pendingBytes = rest.length;
    return frame;
  }
}
