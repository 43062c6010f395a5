import { randomBytes } from 'node:crypto';
import { helperThreadsStarting, settleHelperThreads } from '@pagevault/hashing';
import { afterAll, describe, expect, it } from 'vitest';
import { Consistency, DEFAULT_MAX_FRAME_BYTES, SnapshotMode, VmaKind } from './constants';
import { decodeFrame } from './frame';
import { FramePool } from './frame-pool';
import { FrameSealer } from './frame-sealer';
import { SnapshotWriter, type SnapshotWriterOptions } from './snapshot-writer';
import { StreamValidator } from './stream-validator';
import type { SnapshotBegin, VmaHeader } from './types';
import { frameCrc, writeHeader } from './v1/header';
import { FrameType } from './constants';

const ID = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const BEGIN: SnapshotBegin = {
  pageSize: 4096, pid: 7, startTimeMs: 1, mode: SnapshotMode.Full, consistency: Consistency.Frozen,
  tenant: 't', host: 'h', cmdline: 'c', parentId: Buffer.alloc(16),
};
const anon = (start: number, end: number): Omit<VmaHeader, 'index'> => ({
  start, end, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '', inode: 0, path: '', vmFlags: '', reason: '', sharedKey: '',
});

/** One snapshot of several VMAs with chunks, runs and short chunks; the frames as emitted, copied. */
function write(data: Buffer, opts: Partial<SnapshotWriterOptions>, abortAt = -1): Buffer[] {
  const out: Buffer[] = [];
  const w = new SnapshotWriter({
    snapshotId: ID,
    emit: (f) => {
      out.push(Buffer.from(f)); // a copy: the frame goes back to the pool at once, as a spool would do
      opts.pool?.give(f);
    },
    ...opts,
  });
  w.begin(BEGIN);
  const pages = data.length / 4096;
  for (let v = 0; v < 3; v++) {
    const base = 0x100000000 * (v + 1);
    w.beginVma(anon(base, base + pages * 4096 * 2));
    // Uneven calls: chunks fill across them, and each VMA ends on a short chunk.
    for (let p = 0; p < pages; ) {
      const n = Math.min(pages - p, 1 + ((p * 7 + v) % 97));
      w.addPages(Array.from({ length: n }, (_, k) => base + (p + k) * 4096), data, p * 4096, n);
      p += n;
      if (abortAt >= 0 && out.length >= abortAt) {
        w.abort('TEST', 'stopped here');
        return out;
      }
    }
    w.addZero(base + pages * 4096, 3);
    w.endVma();
  }
  w.end();
  return out;
}

describe('FrameSealer', () => {
  const sealer = new FrameSealer();
  const data = randomBytes(1500 * 4096);
  const plain = write(data, {});
  afterAll(() => undefined);

  it('gives a writer the very bytes it writes without it, frame for frame, pool or not', () => {
    expect(plain.length).toBeGreaterThan(20);
    for (const pool of [undefined, new FramePool(8)]) {
      const sealed = write(data, { sealer, ...(pool ? { pool } : {}) });
      expect(sealed.length).toBe(plain.length);
      sealed.forEach((f, i) => expect(f.equals(plain[i]!), `frame ${i}`).toBe(true));
    }
    // And the stream is valid end to end: CRCs, sequence, digest.
    const v = new StreamValidator(ID);
    for (const f of plain) v.accept(decodeFrame(f, DEFAULT_MAX_FRAME_BYTES));
  });

  it('emits what came before an abort, in order, then the abort', () => {
    const a = write(data, {}, 5);
    const b = write(data, { sealer }, 5);
    // With a sealer frames leave a little later, so the abort may come after more chunks: the common
    // prefix is identical and both end in an abort frame with the next sequence number.
    const n = Math.min(a.length, b.length) - 1;
    for (let i = 0; i < n; i++) expect(b[i]!.equals(a[i]!), `frame ${i}`).toBe(true);
    for (const s of [a, b]) {
      const frames = s.map((f) => decodeFrame(f, DEFAULT_MAX_FRAME_BYTES));
      expect(frames.map((f) => f.sequence)).toEqual(frames.map((_, i) => i));
      expect(frames.at(-1)!.type).toBe(FrameType.Abort);
    }
  });

  it('counts as a helper still loading until its thread has loaded koffi and the CRC library', async () => {
    const s = new FrameSealer();
    s.start();
    expect(helperThreadsStarting()).toBeGreaterThan(0); // a new thread takes tens of ms to load them
    await settleHelperThreads();
    expect(helperThreadsStarting()).toBe(0);
    // Loaded, it answers: a frame's CRC comes from the helper (or the caller), equal to the inline one.
    const f = randomBytes(8192);
    writeHeader(f, FrameType.PageChunk, 0, ID);
    const want = frameCrc(f);
    s.finish(s.submit(f));
    expect(f.readUInt32LE(32)).toBe(want);
  });

  it('hands out no ticket when its ring is full, and finishes tickets in any order', () => {
    const s = new FrameSealer();
    const frames = Array.from({ length: 70 }, (_, i) => {
      const f = randomBytes(4096 + i);
      writeHeader(f, FrameType.PageChunk, i, ID);
      return f;
    });
    const tickets = frames.map((f) => s.submit(f));
    expect(tickets.slice(0, 64).every((t) => t >= 0)).toBe(true);
    expect(tickets.slice(64)).toEqual([-1, -1, -1, -1, -1, -1]);
    const want = frames.map((f) => frameCrc(f));
    for (let i = 63; i >= 0; i--) s.finish(tickets[i]!);
    frames.slice(0, 64).forEach((f, i) => expect(f.readUInt32LE(32)).toBe(want[i]));
    expect(s.submit(frames[64]!)).toBeGreaterThanOrEqual(0); // slots free again
  });

  it('frees every ticket of a writer whose receiver failed, so the shared ring never fills up', () => {
    const s = new FrameSealer();
    for (let round = 0; round < 3; round++) {
      let n = 0;
      const w = new SnapshotWriter({
        snapshotId: ID,
        sealer: s,
        emit: () => {
          if (++n === 6) throw new Error('receiver gone');
        },
      });
      try {
        w.begin(BEGIN);
        w.beginVma(anon(0x100000000, 0x100000000 + 3000 * 4096));
        w.addPages(Array.from({ length: 3000 }, (_, k) => 0x100000000 + k * 4096), randomBytes(3000 * 4096));
        w.endVma();
        w.end();
      } catch {
        try {
          w.abort('TEST', 'receiver gone'); // as capture does on any failure
        } catch {
          // the receiver is what failed
        }
      }
    }
    // Every slot is free again: a full ring of tickets is handed out.
    const f = Buffer.alloc(4096);
    writeHeader(f, FrameType.PageChunk, 0, ID);
    const tickets = Array.from({ length: 64 }, () => s.submit(f));
    expect(tickets.every((t) => t >= 0)).toBe(true);
    for (const t of tickets) s.finish(t);
  });
});
