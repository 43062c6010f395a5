import { ErrorCodes } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { ABSOLUTE_MAX_FRAME_BYTES, Consistency, FrameType, HEADER_BYTES, SnapshotMode, VmaKind } from './constants';
import { decodeFrame, FrameSplitter } from './frame';
import { SnapshotWriter } from './snapshot-writer';
import type { Frame } from './types';
import { encodeVmaEnd } from './v1/encode';
import { ID, codeOf } from './test-helpers';



/** A small stream: begin, one VMA with 3 pages in 2 chunks and a zero run, end. */
function smallStream(): { bin: Buffer; edges: number[] } {
  const frames: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: ID, emit: (f) => frames.push(f), maxFrameBytes: 36 + 8 + 2 * 4104 });
  w.begin({ pageSize: 4096, pid: 1, startTimeMs: 0, mode: SnapshotMode.Full, consistency: Consistency.Frozen, tenant: 't', host: 'h', cmdline: 'c' });
  w.beginVma({ start: 0x10000, end: 0x20000, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '', inode: 0, path: '', vmFlags: '', reason: '', sharedKey: '' });
  w.addPages([0x10000, 0x11000, 0x15000], Buffer.alloc(3 * 4096, 7));
  w.addZero(0x16000, 2);
  w.endVma();
  w.end();
  const edges: number[] = [];
  let at = 0;
  for (const f of frames) edges.push((at += f.length));
  return { bin: Buffer.concat(frames), edges };
}

const summary = (fs: Frame[]) => fs.map((f) => `${f.sequence}:${f.type}:${f.raw.toString('hex')}`);

describe('decodeFrame', () => {
  const f = encodeVmaEnd(ID, 1, 0);

  it('takes exactly one whole frame', () => {
    expect(decodeFrame(f)).toMatchObject({ version: 1, type: FrameType.VmaEnd, length: 8, sequence: 1, body: { index: 0 } });
    expect(codeOf(() => decodeFrame(f.subarray(0, f.length - 1)))).toBe(ErrorCodes.FRAME_TRUNCATED);
    expect(codeOf(() => decodeFrame(Buffer.concat([f, Buffer.from([0])])))).toBe(ErrorCodes.FRAME_MALFORMED);
  });

  it('honours a reader maximum below the default', () => {
    expect(codeOf(() => decodeFrame(f, f.length))).toBe('no error');
    expect(codeOf(() => decodeFrame(f, f.length - 1))).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });
});

describe('FrameSplitter', () => {
  const { bin, edges } = smallStream();
  const whole = summary(new FrameSplitter().push(bin));
  // Every offset in and around each frame's header, and every 61st byte of the payloads between.
  const cuts = [...new Set([...Array(bin.length + 1).keys()].filter((n) => [0, ...edges].some((e) => n >= e - 1 && n <= e + HEADER_BYTES + 1) || n % 61 === 0))];

  it('splits a stream into its frames', () => {
    expect(whole.length).toBe(edges.length);
    expect(whole.map((s) => s.split(':').slice(0, 2).join(':'))).toEqual(['0:1', '1:2', '2:3', '3:3', '4:4', '5:7', '6:8']);
  });

  it('gives the same frames wherever the input is cut in two', () => {
    for (const cut of cuts) {
      const s = new FrameSplitter();
      const got = [...s.push(bin.subarray(0, cut)), ...s.push(bin.subarray(cut))];
      s.end();
      expect(summary(got)).toEqual(whole);
    }
  });

  it('gives the same frames fed one byte at a time', () => {
    const s = new FrameSplitter();
    const got: Frame[] = [];
    for (let i = 0; i < bin.length; i++) got.push(...s.push(bin.subarray(i, i + 1)));
    s.end();
    expect(summary(got)).toEqual(whole);
  });

  it('reports a stream that stops inside a frame as truncated', () => {
    for (const n of cuts) {
      const s = new FrameSplitter();
      const got = s.push(bin.subarray(0, n));
      expect(got.length).toBe(edges.filter((e) => e <= n).length);
      expect(codeOf(() => s.end())).toBe(edges.includes(n) || n === 0 ? 'no error' : ErrorCodes.FRAME_TRUNCATED);
    }
  });

  it('refuses a header announcing 2 GiB as soon as the header is in, having buffered nothing more', () => {
    const head = Buffer.from(bin.subarray(0, HEADER_BYTES));
    head.writeUInt32LE(0x8000_0000, 8);
    const s = new FrameSplitter();
    for (let i = 0; i < HEADER_BYTES - 1; i++) expect(s.push(head.subarray(i, i + 1))).toEqual([]);
    expect(codeOf(() => s.push(head.subarray(HEADER_BYTES - 1)))).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });

  it('refuses a header announcing more than its configured maximum, even under the absolute one', () => {
    const head = Buffer.from(bin.subarray(0, HEADER_BYTES));
    head.writeUInt32LE(5000, 8);
    expect(codeOf(() => new FrameSplitter(5000).push(head))).toBe(ErrorCodes.FRAME_TOO_LARGE);
    head.writeUInt32LE(ABSOLUTE_MAX_FRAME_BYTES, 8);
    expect(codeOf(() => new FrameSplitter(2 ** 40).push(head))).toBe(ErrorCodes.FRAME_TOO_LARGE);
  });

  it('refuses garbage between frames', () => {
    const s = new FrameSplitter();
    expect(codeOf(() => s.push(Buffer.concat([bin.subarray(0, edges[0]), Buffer.alloc(40, 0x41)])))).toBe(ErrorCodes.FRAME_BAD_MAGIC);
  });

  it('refuses a frame whose CRC is wrong even when its boundaries are right', () => {
    const bad = Buffer.from(bin);
    bad[edges[1]! + 40]! ^= 0x10;
    expect(codeOf(() => new FrameSplitter().push(bad))).toBe(ErrorCodes.FRAME_BAD_CRC);
  });

  it('accepts empty pushes and an empty stream', () => {
    const s = new FrameSplitter();
    expect(s.push(Buffer.alloc(0))).toEqual([]);
    expect(codeOf(() => s.end())).toBe('no error');
  });
});
