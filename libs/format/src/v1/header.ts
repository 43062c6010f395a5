import { ErrorCodes, PvError } from '@pagevault/errors';
import { frameCrc32c } from '@pagevault/hashing';
import { FORMAT_VERSION, FrameType, HEADER_BYTES, MAGIC, SNAPSHOT_ID_BYTES } from '../constants';
import type { FrameHeader } from '../types';

/** Offset of the CRC32C field; the CRC covers header bytes [0, CRC_OFFSET) and then the payload. */
export const CRC_OFFSET = 32;

/** Writes the header in front of a payload already placed at frame[HEADER_BYTES...] and seals the CRC. */
export function sealFrame(
  frame: Buffer,
  type: FrameType,
  sequence: number,
  snapshotId: Uint8Array,
): Buffer {
  writeHeader(frame, type, sequence, snapshotId);
  frame.writeUInt32LE(frameCrc(frame), CRC_OFFSET);
  return frame;
}

/** The header but its CRC field (sealFrame without the CRC, for a FrameSealer to finish). */
export function writeHeader(frame: Buffer, type: FrameType, sequence: number, snapshotId: Uint8Array): void {
  MAGIC.copy(frame, 0);
  frame[4] = FORMAT_VERSION;
  frame[5] = type;
  frame.writeUInt16LE(0, 6);
  frame.writeUInt32LE(frame.length - HEADER_BYTES, 8);
  frame.writeUInt32LE(sequence >>> 0, 12);
  frame.set(snapshotId, 16);
}

/** CRC32C of header bytes [0, CRC_OFFSET) and then the payload: what the CRC field must hold. */
export function frameCrc(frame: Buffer): number {
  return frameCrc32c(frame, CRC_OFFSET, HEADER_BYTES);
}

const KNOWN_TYPES = new Set<number>(Object.values(FrameType).filter((v) => typeof v === 'number'));

/**
 * Validates the fixed header in buf[0, HEADER_BYTES) before anything else is read or allocated:
 * magic, version, type, reserved flags and a payload length bounded by maxFrameBytes.
 */
export function parseHeader(buf: Buffer, maxFrameBytes: number): FrameHeader {
  if (buf.length < HEADER_BYTES) {
    throw new PvError(ErrorCodes.FRAME_TRUNCATED, `frame header is ${buf.length} bytes, needs ${HEADER_BYTES}`);
  }
  if (buf.compare(MAGIC, 0, 4, 0, 4) !== 0) {
    throw new PvError(ErrorCodes.FRAME_BAD_MAGIC, `bad magic ${buf.subarray(0, 4).toString('hex')}, expected "PVFR"`);
  }
  const version = buf[4]!;
  if (version !== FORMAT_VERSION) {
    throw new PvError(ErrorCodes.FRAME_UNKNOWN_VERSION, `unknown format version ${version} (this reader knows 1)`, {
      details: { version },
    });
  }
  const type = buf[5]!;
  if (!KNOWN_TYPES.has(type)) {
    throw new PvError(ErrorCodes.FRAME_UNKNOWN_TYPE, `unknown frame type ${type}`, { details: { type } });
  }
  if (buf.readUInt16LE(6) !== 0) {
    throw new PvError(ErrorCodes.FRAME_MALFORMED, `reserved header flags are ${buf.readUInt16LE(6)}, must be 0`);
  }
  const length = buf.readUInt32LE(8);
  if (length > maxFrameBytes - HEADER_BYTES) {
    throw new PvError(
      ErrorCodes.FRAME_TOO_LARGE,
      `frame payload of ${length} bytes exceeds the maximum frame of ${maxFrameBytes} bytes`,
      { details: { length, maxFrameBytes } },
    );
  }
  return {
    version,
    type: type as FrameType,
    length,
    sequence: buf.readUInt32LE(12),
    snapshotId: buf.subarray(16, 16 + SNAPSHOT_ID_BYTES),
    crc: buf.readUInt32LE(CRC_OFFSET),
  };
}

export function checkCrc(frame: Buffer, header: FrameHeader): void {
  const crc = frameCrc(frame);
  if (crc !== header.crc) {
    throw new PvError(
      ErrorCodes.FRAME_BAD_CRC,
      `CRC32C mismatch in frame ${header.sequence}: stored ${header.crc.toString(16)}, computed ${crc.toString(16)}`,
      { details: { sequence: header.sequence, type: header.type } },
    );
  }
}
