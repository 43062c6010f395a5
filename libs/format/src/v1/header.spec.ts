import { crc32c } from '@node-rs/crc32';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { ABSOLUTE_MAX_FRAME_BYTES, DEFAULT_MAX_FRAME_BYTES, FrameType, HEADER_BYTES } from '../constants';
import { decodeFrame } from '../frame';
import { encodeVmaEnd } from './encode';
import { checkCrc, CRC_OFFSET, parseHeader, sealFrame } from './header';
import { ID, codeOf } from '../test-helpers';



/** A sealed frame of the given type around an arbitrary payload. */
function seal(type: number, payload: Buffer, seq = 7): Buffer {
  const f = Buffer.alloc(HEADER_BYTES + payload.length);
  payload.copy(f, HEADER_BYTES);
  return sealFrame(f, type, seq, ID);
}

describe('the frame header', () => {
  const frame = seal(FrameType.VmaEnd, Buffer.from('0500000000000000', 'hex'), 0x01020304);

  it('is magic "PVFR", version 1, type, zero flags, payload length, sequence, snapshot id and CRC32C, little-endian', () => {
    expect(frame.subarray(0, 36).toString('hex')).toBe(
      '50564652' + '01' + '07' + '0000' + '08000000' + '04030201' + ID.toString('hex') + frame.subarray(32, 36).toString('hex'),
    );
    expect(parseHeader(frame, DEFAULT_MAX_FRAME_BYTES)).toEqual({
      version: 1, type: FrameType.VmaEnd, length: 8, sequence: 0x01020304, snapshotId: ID, crc: frame.readUInt32LE(32),
    });
  });

  it('carries a CRC32C over header bytes [0, 32) followed by the payload, not over the CRC field itself', () => {
    const expected = crc32c(Buffer.concat([frame.subarray(0, CRC_OFFSET), frame.subarray(HEADER_BYTES)])) >>> 0;
    expect(frame.readUInt32LE(CRC_OFFSET)).toBe(expected);
    expect(crc32c(Buffer.from('123456789')) >>> 0).toBe(0xe3069283); // Castagnoli, not the zlib CRC-32
  });

  it('is refused as truncated at every length short of 36 bytes', () => {
    for (let n = 0; n < HEADER_BYTES; n++) {
      expect(codeOf(() => parseHeader(frame.subarray(0, n), DEFAULT_MAX_FRAME_BYTES))).toBe(ErrorCodes.FRAME_TRUNCATED);
    }
  });

  it.each([0, 1, 2, 3])('is refused with a wrong magic byte %i', (i) => {
    for (const v of [0x00, 0x70, frame[i]! ^ 0x20, 0xff]) {
      const f = Buffer.from(frame);
      f[i] = v;
      expect(codeOf(() => decodeFrame(f))).toBe(ErrorCodes.FRAME_BAD_MAGIC);
    }
  });

  it.each([0, 2, 3, 0x7f, 0xff])('is refused with unknown version %i, before the type or CRC is looked at', (v) => {
    const f = Buffer.from(frame);
    f[4] = v;
    f[5] = 0xee;
    const err = (() => {
      try {
        decodeFrame(f);
      } catch (e) {
        return e as PvError;
      }
      throw new Error('accepted');
    })();
    expect(err.code).toBe(ErrorCodes.FRAME_UNKNOWN_VERSION);
    expect(err.details).toEqual({ version: v });
  });

  it('knows exactly the types 1 to 9', () => {
    for (let t = 0; t < 256; t++) {
      const f = Buffer.from(frame);
      f[5] = t;
      const code = codeOf(() => parseHeader(f, DEFAULT_MAX_FRAME_BYTES));
      expect(code).toBe(t >= 1 && t <= 9 ? 'no error' : ErrorCodes.FRAME_UNKNOWN_TYPE);
    }
  });

  it('is refused with any reserved flag bit set', () => {
    for (let bit = 0; bit < 16; bit++) {
      const f = Buffer.from(frame);
      f.writeUInt16LE(1 << bit, 6);
      expect(codeOf(() => parseHeader(f, DEFAULT_MAX_FRAME_BYTES))).toBe(ErrorCodes.FRAME_MALFORMED);
    }
  });

  it('is refused when its length passes the maximum frame, from the header alone', () => {
    const head = Buffer.from(frame.subarray(0, HEADER_BYTES));
    const at = (len: number, max: number) => {
      head.writeUInt32LE(len, 8);
      return codeOf(() => parseHeader(head, max));
    };
    expect(at(DEFAULT_MAX_FRAME_BYTES - HEADER_BYTES, DEFAULT_MAX_FRAME_BYTES)).toBe('no error');
    expect(at(DEFAULT_MAX_FRAME_BYTES - HEADER_BYTES + 1, DEFAULT_MAX_FRAME_BYTES)).toBe(ErrorCodes.FRAME_TOO_LARGE);
    expect(at(0x8000_0000, DEFAULT_MAX_FRAME_BYTES)).toBe(ErrorCodes.FRAME_TOO_LARGE);
    expect(at(0xffff_ffff, ABSOLUTE_MAX_FRAME_BYTES)).toBe(ErrorCodes.FRAME_TOO_LARGE);
    expect(at(0, 10)).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });

  it('never allows more than 64 MiB, whatever maximum a reader asks for', () => {
    const head = Buffer.from(frame.subarray(0, HEADER_BYTES));
    head.writeUInt32LE(ABSOLUTE_MAX_FRAME_BYTES - HEADER_BYTES + 1, 8);
    expect(codeOf(() => decodeFrame(head, 2 ** 31))).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });

  it('detects every flipped bit of the sequence, snapshot id, CRC and payload as a CRC mismatch', () => {
    const f = encodeVmaEnd(ID, 3, 2);
    for (let byte = 12; byte < f.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const g = Buffer.from(f);
        g[byte]! ^= 1 << bit;
        expect(codeOf(() => checkCrc(g, parseHeader(g, DEFAULT_MAX_FRAME_BYTES)))).toBe(ErrorCodes.FRAME_BAD_CRC);
      }
    }
  });

  it('detects every flipped bit anywhere in a frame, with some PV_FRAME_ error', () => {
    const f = encodeVmaEnd(ID, 3, 2);
    for (let byte = 0; byte < f.length; byte++) {
      for (let bit = 0; bit < 8; bit++) {
        const g = Buffer.from(f);
        g[byte]! ^= 1 << bit;
        expect(codeOf(() => decodeFrame(g))).toMatch(/^PV_FRAME_/);
      }
    }
  });
});
