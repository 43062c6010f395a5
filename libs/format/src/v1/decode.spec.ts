import { ErrorCodes, PvError } from '@pagevault/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Consistency, FrameType, HEADER_BYTES, Prot, SnapshotMode, VmaFlag, VmaKind } from '../constants';
import { decodeFrame } from '../frame';
import type { SnapshotBegin, VmaHeader } from '../types';
import {
  encodeAbort, encodePageChunk, encodeRuns, encodeSnapshotBegin, encodeSnapshotEnd, encodeVmaBegin, encodeVmaEnd,
} from './encode';
import { sealFrame } from './header';
import { ID, codeOf } from '../test-helpers';



/** A correctly sealed frame around any payload: only the payload decoder stands between it and the caller. */
function seal(type: FrameType, payload: Uint8Array): Buffer {
  const f = Buffer.alloc(HEADER_BYTES + payload.length);
  f.set(payload, HEADER_BYTES);
  return sealFrame(f, type, 0, ID);
}
/** The frame with its payload patched by `edit`, resealed so the CRC is right. */
function patched(frame: Buffer, edit: (payload: Buffer) => void): Buffer {
  const p = Buffer.from(frame.subarray(HEADER_BYTES));
  edit(p);
  return seal(frame[5]!, p);
}
const bodyOf = (f: Buffer) => decodeFrame(f).body;

const BEGIN: SnapshotBegin = {
  pageSize: 4096, pid: 4242, startTimeMs: 1_700_000_000_123, mode: SnapshotMode.Incremental,
  consistency: Consistency.PreCopy, tenant: 'acme', host: 'hôte-1', cmdline: 'a\0b\0',
  parentId: Buffer.alloc(16, 1), groupId: Buffer.alloc(16, 2),
};
const VMA: VmaHeader = {
  index: 3, start: 0x7f00_0000_0000, end: 0x7f00_0010_0000, prot: Prot.Read | Prot.Exec, flags: VmaFlag.Shared,
  pgoff: 0x1_2345_6000, kind: VmaKind.SharedFile, dev: 'fd:01', inode: 2 ** 40, path: '/data/файл.db',
  vmFlags: 'rd sh mr mw me ms', reason: '', sharedKey: 'shmem:fd:01:1099511627776',
};
const PAGES = Buffer.concat([Buffer.alloc(4096, 1), Buffer.alloc(4096, 2)]);
const END = {
  vmaCount: 5, dataPages: 10, zeroPages: 20, filePages: 30, parentPages: 40, frameCount: 99, digest: Buffer.alloc(32, 0xab),
};

/** One well-formed example of every frame type. */
const EXAMPLES: [string, Buffer][] = [
  ['snapshot-begin', encodeSnapshotBegin(ID, 0, BEGIN)],
  ['vma-begin', encodeVmaBegin(ID, 0, VMA)],
  ['page-chunk', encodePageChunk(ID, 0, 4096, [0x7f00_0000_0000, 0xffff_ffff_ff60_0000], PAGES)],
  ['zero-runs', encodeRuns(ID, 0, FrameType.ZeroRuns, [{ start: 0x1000, pages: 1 }, { start: 0x3000, pages: 2 ** 40 }])],
  ['file-runs', encodeRuns(ID, 0, FrameType.FileRuns, [{ start: 0x2000, pages: 3 }])],
  ['parent-runs', encodeRuns(ID, 0, FrameType.ParentRuns, [])],
  ['vma-end', encodeVmaEnd(ID, 0, 3)],
  ['snapshot-end', encodeSnapshotEnd(ID, 0, END)],
  ['abort', encodeAbort(ID, 0, 'PV_READ_FAILED', 'process_vm_readv: EFAULT at 0x7f0000001000')],
];

describe('payloads of version 1', () => {
  it('decode to what was encoded, for every type', () => {
    expect(bodyOf(EXAMPLES[0]![1])).toEqual({ type: FrameType.SnapshotBegin, begin: BEGIN });
    expect(bodyOf(EXAMPLES[1]![1])).toEqual({ type: FrameType.VmaBegin, vma: VMA });
    const chunk = bodyOf(EXAMPLES[2]![1]);
    expect(chunk).toMatchObject({ type: FrameType.PageChunk, pageSize: 4096 });
    if (chunk.type !== FrameType.PageChunk) throw new Error();
    expect([...chunk.addresses]).toEqual([0x7f00_0000_0000, 0xffff_ffff_ff60_0000]);
    expect(chunk.data.equals(PAGES)).toBe(true);
    expect(bodyOf(EXAMPLES[3]![1])).toEqual({ type: FrameType.ZeroRuns, runs: [{ start: 0x1000, pages: 1 }, { start: 0x3000, pages: 2 ** 40 }] });
    expect(bodyOf(EXAMPLES[5]![1])).toEqual({ type: FrameType.ParentRuns, runs: [] });
    expect(bodyOf(EXAMPLES[6]![1])).toEqual({ type: FrameType.VmaEnd, index: 3 });
    expect(bodyOf(EXAMPLES[7]![1])).toEqual({ type: FrameType.SnapshotEnd, end: END });
    expect(bodyOf(EXAMPLES[8]![1])).toEqual({ type: FrameType.Abort, code: 'PV_READ_FAILED', message: 'process_vm_readv: EFAULT at 0x7f0000001000' });
  });

  it('give page data as a view into the frame, not a copy', () => {
    const f = EXAMPLES[2]![1];
    const b = bodyOf(f);
    if (b.type !== FrameType.PageChunk) throw new Error();
    expect(b.data.buffer).toBe(f.buffer);
  });

  it('read an all-zero parent or group id as "none"', () => {
    const f = encodeSnapshotBegin(ID, 0, { ...BEGIN, mode: SnapshotMode.Full, parentId: new Uint8Array(16), groupId: undefined });
    const b = bodyOf(f);
    if (b.type !== FrameType.SnapshotBegin) throw new Error();
    expect('parentId' in b.begin || 'groupId' in b.begin).toBe(false);
  });

  it('carry strings of 65535 bytes, the most a u16 length can say', () => {
    const long = 'é'.repeat(32767) + 'x';
    const b = bodyOf(encodeVmaBegin(ID, 0, { ...VMA, path: long, vmFlags: long, reason: long, dev: long, sharedKey: long }));
    if (b.type !== FrameType.VmaBegin) throw new Error();
    expect(b.vma.path).toBe(long);
    expect(() => encodeVmaBegin(ID, 0, { ...VMA, path: long + 'y' })).toThrow(PvError);
  });

  it('cut an abort message to 4000 characters', () => {
    const b = bodyOf(encodeAbort(ID, 0, 'PV_TIMEOUT', 'm'.repeat(10_000)));
    if (b.type !== FrameType.Abort) throw new Error();
    expect(b.message.length).toBe(4000);
  });

  describe.each(EXAMPLES)('a %s payload', (_, frame) => {
    const payload = frame.subarray(HEADER_BYTES);
    // Thousands of refusals each: stack traces would cost most of the time.
    const limit = Error.stackTraceLimit;
    beforeAll(() => {
      Error.stackTraceLimit = 0;
    });
    afterAll(() => {
      Error.stackTraceLimit = limit;
    });

    it('is refused, with a valid CRC, at every length short of its own', () => {
      for (let n = 0; n < payload.length; n++) {
        expect(codeOf(() => decodeFrame(seal(frame[5]!, payload.subarray(0, n))))).toBe(ErrorCodes.FRAME_MALFORMED);
      }
    });

    it('is refused with a byte more at its end', () => {
      expect(codeOf(() => decodeFrame(seal(frame[5]!, Buffer.concat([payload, Buffer.from([0])]))))).toBe(ErrorCodes.FRAME_MALFORMED);
    });
  });
});

describe('hostile payloads', () => {
  const [chunk, zero, begin, vma, vmaEnd, end, abort] = [2, 3, 0, 1, 6, 7, 8].map((i) => EXAMPLES[i]![1]);

  it('a page chunk announcing 0xFFFFFFFF pages is refused before anything is allocated by that count', () => {
    const t = performance.now();
    expect(codeOf(() => decodeFrame(patched(chunk!, (p) => p.writeUInt32LE(0xffff_ffff, 0))))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(performance.now() - t).toBeLessThan(100);
  });

  it.each([0, 1, 3, 1000, 0x8000_0000])('a page chunk announcing %i pages for a payload of 2 is refused', (n) => {
    expect(codeOf(() => decodeFrame(patched(chunk!, (p) => p.writeUInt32LE(n, 0))))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it.each([0, 1, 2048, 4095, 6144, 4097, 131072, 0xffff_ffff])('a page size of %i is refused in a chunk and in snapshot-begin', (ps) => {
    expect(codeOf(() => decodeFrame(patched(chunk!, (p) => p.writeUInt32LE(ps, 4))))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(codeOf(() => decodeFrame(patched(begin!, (p) => p.writeUInt32LE(ps, 0))))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it.each([4096, 8192, 16384, 32768, 65536])('a page size of %i is accepted', (ps) => {
    const f = encodePageChunk(ID, 0, ps, [0], Buffer.alloc(ps));
    expect(codeOf(() => decodeFrame(f))).toBe('no error');
    expect(codeOf(() => decodeFrame(patched(begin!, (p) => p.writeUInt32LE(ps, 0))))).toBe('no error');
  });

  it.each([0xffff_ffff, 3, 1])('runs announcing %i entries for a payload of 2 are refused', (n) => {
    expect(codeOf(() => decodeFrame(patched(zero!, (p) => p.writeUInt32LE(n, 0))))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it('an address above 2^53 that a double cannot hold exactly is refused', () => {
    expect(codeOf(() => decodeFrame(patched(chunk!, (p) => p.writeBigUInt64LE(2n ** 53n + 1n, 8))))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(codeOf(() => decodeFrame(patched(zero!, (p) => p.writeBigUInt64LE(2n ** 60n + 8n, 4 + 16 + 8))))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it('unknown snapshot modes, consistencies and VMA kinds are refused', () => {
    expect(codeOf(() => decodeFrame(patched(begin!, (p) => (p[48] = 2))))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(codeOf(() => decodeFrame(patched(begin!, (p) => (p[49] = 3))))).toBe(ErrorCodes.FRAME_MALFORMED);
    for (const kind of [0, 11, 255]) expect(codeOf(() => decodeFrame(patched(vma!, (p) => (p[36] = kind))))).toBe(ErrorCodes.FRAME_MALFORMED);
    for (let kind = 1; kind <= 10; kind++) expect(codeOf(() => decodeFrame(patched(vma!, (p) => (p[36] = kind))))).toBe('no error');
  });

  it('reserved payload fields that are not zero are refused (one value, one encoding)', () => {
    expect(codeOf(() => decodeFrame(patched(begin!, (p) => p.writeUInt16LE(1, 50))))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(codeOf(() => decodeFrame(patched(vma!, (p) => (p[37] = 1))))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(codeOf(() => decodeFrame(patched(vma!, (p) => p.writeUInt16LE(0x100, 38))))).toBe(ErrorCodes.FRAME_MALFORMED);
    expect(codeOf(() => decodeFrame(patched(end!, (p) => p.writeUInt32LE(0x8000_0000, 4))))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it('protection and VMA flag bits that version 1 does not define are refused', () => {
    for (let bit = 3; bit < 32; bit++) {
      expect(codeOf(() => decodeFrame(patched(vma!, (p) => p.writeUInt32LE((Prot.Read | (1 << bit)) >>> 0, 20))))).toBe(ErrorCodes.FRAME_MALFORMED);
      expect(codeOf(() => decodeFrame(patched(vma!, (p) => p.writeUInt32LE((1 << bit) >>> 0, 24))))).toBe(ErrorCodes.FRAME_MALFORMED);
    }
    expect(codeOf(() => decodeFrame(patched(vma!, (p) => p.writeUInt32LE(7, 24))))).toBe('no error');
  });

  it('a VMA end whose page count is not zero is refused', () => {
    expect(codeOf(() => decodeFrame(patched(vmaEnd!, (p) => p.writeUInt32LE(1, 4))))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it('strings longer than the payload are refused', () => {
    expect(codeOf(() => decodeFrame(patched(abort!, (p) => p.writeUInt16LE(0xffff, 0))))).toBe(ErrorCodes.FRAME_MALFORMED);
    // the tenant of snapshot-begin starts at payload offset 52
    expect(codeOf(() => decodeFrame(patched(begin!, (p) => p.writeUInt16LE(p.length, 52))))).toBe(ErrorCodes.FRAME_MALFORMED);
    // the dev string of vma-begin starts at payload offset 48
    expect(codeOf(() => decodeFrame(patched(vma!, (p) => p.writeUInt16LE(0xfff0, 48))))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it('strings that are not UTF-8 are refused', () => {
    const bad = seal(FrameType.Abort, Buffer.from('0200c328' + '0000', 'hex'));
    expect(codeOf(() => decodeFrame(bad))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it('a snapshot-end shorter than its 32-byte digest is refused', () => {
    expect(codeOf(() => decodeFrame(seal(FrameType.SnapshotEnd, end!.subarray(HEADER_BYTES, HEADER_BYTES + 79))))).toBe(ErrorCodes.FRAME_MALFORMED);
  });
});
