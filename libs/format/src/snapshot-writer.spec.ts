import { createHash } from 'node:crypto';
import { ErrorCodes } from '@pagevault/errors';
import { describe, expect, it, vi } from 'vitest';
import {
  ABSOLUTE_MAX_FRAME_BYTES, Consistency, DEFAULT_MAX_FRAME_BYTES, FrameType, HEADER_BYTES, SnapshotMode, VmaFlag, VmaKind,
} from './constants';
import { decodeFrame } from './frame';
import { FramePool } from './frame-pool';
import { FrameSealer } from './frame-sealer';
import { SnapshotWriter, type SnapshotWriterOptions } from './snapshot-writer';
import { StreamValidator } from './stream-validator';
import type { Frame, SnapshotBegin, VmaHeader } from './types';
import { codeOf } from './test-helpers';

const ID = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
const BEGIN: SnapshotBegin = {
  pageSize: 4096, pid: 7, startTimeMs: 1, mode: SnapshotMode.Incremental, consistency: Consistency.Frozen,
  tenant: 't', host: 'h', cmdline: 'c', parentId: Buffer.alloc(16, 9),
};
const anon = (start: number, end: number, over: Partial<VmaHeader> = {}): Omit<VmaHeader, 'index'> => ({
  start, end, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '', inode: 0, path: '', vmFlags: '',
  reason: '', sharedKey: '', ...over,
});
const pages = (n: number, seed = 0) => Buffer.from(Array.from({ length: n * 4096 }, (_, i) => (i * 31 + seed) & 0xff));


function writer(opts: Partial<SnapshotWriterOptions> = {}): { w: SnapshotWriter; raw: Buffer[]; frames: () => Frame[] } {
  const raw: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: ID, emit: (f) => raw.push(f), ...opts });
  return { w, raw, frames: () => raw.map((f) => decodeFrame(f, opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES)) };
}
const types = (fs: Frame[]) => fs.map((f) => FrameType[f.type]);

describe('SnapshotWriter', () => {
  it('leaves 4 KiB under Kafka\'s default 1,048,588-byte record batch for every frame by default', () => {
    expect(DEFAULT_MAX_FRAME_BYTES).toBe(1024 * 1024 - 4096);
    expect(DEFAULT_MAX_FRAME_BYTES + 4096).toBeLessThanOrEqual(1_048_588);
  });

  it('writes each VMA in the canonical order whatever order pages and runs are given in', () => {
    const { w, frames } = writer();
    w.begin(BEGIN);
    w.beginVma(anon(0x10000, 0x20000));
    w.addParent(0x1f000, 1);
    w.addFile(0x1e000, 1);
    w.addZero(0x1d000, 1);
    w.addPages([0x10000], pages(1));
    w.addZero(0x1c000 + 0x2000, 0); // an empty run merged into its neighbour changes nothing
    w.endVma();
    w.end();
    expect(types(frames())).toEqual(['SnapshotBegin', 'VmaBegin', 'PageChunk', 'ZeroRuns', 'FileRuns', 'ParentRuns', 'VmaEnd', 'SnapshotEnd']);
  });

  it('numbers frames from 0 and stamps each with the snapshot id', () => {
    const { w, frames } = writer();
    w.begin(BEGIN);
    w.beginVma(anon(0x10000, 0x20000));
    w.endVma();
    w.end();
    expect(frames().map((f) => [f.sequence, Buffer.from(f.snapshotId).equals(ID)])).toEqual([[0, true], [1, true], [2, true], [3, true]]);
    expect(w.framesWritten).toBe(4);
  });

  it('fills page chunks to capacity in address order: 254 pages of 4 KiB per default frame', () => {
    const { w, frames } = writer();
    w.begin(BEGIN);
    expect(w.pagesPerChunk).toBe(Math.floor((DEFAULT_MAX_FRAME_BYTES - HEADER_BYTES - 8) / (8 + 4096)));
    expect(w.pagesPerChunk).toBe(254);
    w.beginVma(anon(0x100000, 0x100000 + 600 * 4096));
    const data = pages(600);
    const addrs = Array.from({ length: 600 }, (_, i) => 0x100000 + i * 4096);
    w.addPages(addrs.slice(0, 100), data, 0);
    w.addPages(addrs.slice(100), data, 100 * 4096, 500);
    w.endVma();
    const chunks = frames().filter((f) => f.type === FrameType.PageChunk);
    expect(chunks.map((c) => (c.body.type === FrameType.PageChunk ? c.body.addresses.length : 0))).toEqual([254, 254, 92]);
    expect(chunks.map((c) => c.raw.length)).toEqual([44 + 254 * 4104, 44 + 254 * 4104, 44 + 92 * 4104]);
    for (const c of chunks) expect(c.raw.length).toBeLessThanOrEqual(DEFAULT_MAX_FRAME_BYTES);
    const got = Buffer.concat(chunks.map((c) => (c.body.type === FrameType.PageChunk ? c.body.data : Buffer.alloc(0))));
    expect(got.equals(data)).toBe(true);
  });

  it('writes the same bytes however the pages are batched into calls', () => {
    const run = (batches: number[]) => {
      const { w, raw } = writer({ maxFrameBytes: 44 + 3 * 4104 });
      w.begin(BEGIN);
      w.beginVma(anon(0x10000, 0x30000));
      const data = pages(10);
      let i = 0;
      for (const n of batches) {
        w.addPages(Array.from({ length: n }, (_, k) => 0x10000 + (i + k) * 8192), data, i * 4096, n);
        i += n;
      }
      w.endVma();
      w.end();
      return Buffer.concat(raw);
    };
    const one = run([10]);
    expect(run([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]).equals(one)).toBe(true);
    expect(run([4, 6]).equals(one)).toBe(true);
    expect(run([3, 3, 3, 1]).equals(one)).toBe(true);
  });

  it('lays the last chunks out for the pages announced (expectPages) and still writes the canonical bytes', () => {
    // Chunks of 3 pages; 10 pages in all. The announcement is an upper bound: exact, over by a few,
    // larger than a chunk, made before the VMA's first page or in its middle, read straight into frames.
    const run = (announce: (w: SnapshotWriter, placed: number) => void, direct = false) => {
      const pool = new FramePool();
      const { w, raw } = writer({ maxFrameBytes: 44 + 3 * 4104, pool });
      w.begin(BEGIN);
      w.beginVma(anon(0x10000, 0x30000));
      const data = pages(10);
      const shapes: number[] = [];
      for (let i = 0; i < 10; i++) {
        announce(w, i);
        if (direct) {
          const sp = w.pageSpace();
          shapes.push(sp.room);
          data.copy(sp.frame, sp.offset, i * 4096, (i + 1) * 4096);
          w.placedPages([0x10000 + i * 8192], 1);
        } else w.addPages([0x10000 + i * 8192], data, i * 4096, 1);
      }
      w.endVma();
      w.end();
      return { bytes: Buffer.concat(raw), chunks: raw.filter((f) => decodeFrame(f, 44 + 3 * 4104).type === FrameType.PageChunk).map((f) => f.length), shapes };
    };
    const plain = run(() => undefined);
    expect(plain.chunks).toEqual([3, 3, 3, 1].map((n) => HEADER_BYTES + 8 + n * 4104));
    for (const announce of [
      (w: SnapshotWriter, i: number) => { if (i === 0) w.expectPages(10); },
      (w: SnapshotWriter, i: number) => { if (i === 0) w.expectPages(12); },
      (w: SnapshotWriter, i: number) => { if (i === 7) w.expectPages(3); },
      (w: SnapshotWriter, i: number) => { if (i === 9) w.expectPages(1); },
    ]) {
      expect(run(announce).bytes.equals(plain.bytes)).toBe(true);
      expect(run(announce, true).bytes.equals(plain.bytes)).toBe(true);
    }
    // Announced exactly: the last chunk was opened for its one page (room 1), not for a full chunk's three.
    expect(run((w, i) => { if (i === 9) w.expectPages(1); }, true).shapes.at(-1)).toBe(1);
    expect(plain.shapes).toEqual([]);
  });

  it('gives an announced chunk that got no page no chance to hold the next VMA\'s pages', () => {
    const run = (announce: boolean) => {
      const { w, raw } = writer({ maxFrameBytes: 44 + 3 * 4104 });
      w.begin(BEGIN);
      w.beginVma(anon(0x10000, 0x30000));
      if (announce) w.expectPages(1);
      w.pageSpace(); // opened for one page, which then turned out zero
      w.addZero(0x10000, 1);
      w.endVma();
      w.beginVma(anon(0x30000, 0x40000));
      w.addPages([0x30000, 0x31000, 0x32000], pages(3), 0, 3);
      w.endVma();
      w.end();
      return Buffer.concat(raw);
    };
    expect(run(true).equals(run(false))).toBe(true);
  });

  it('joins adjacent runs of one kind and keeps apart those that do not touch', () => {
    const { w, frames } = writer();
    w.begin(BEGIN);
    w.beginVma(anon(0x10000, 0x40000));
    w.addZero(0x10000, 1);
    w.addZero(0x11000, 2);
    w.addZero(0x14000, 1);
    w.addParent(0x15000, 1);
    w.addParent(0x16000, 1);
    w.endVma();
    const runs = frames().flatMap((f) => ('runs' in f.body ? [[FrameType[f.type], f.body.runs]] : []));
    expect(runs).toEqual([
      ['ZeroRuns', [{ start: 0x10000, pages: 3 }, { start: 0x14000, pages: 1 }]],
      ['ParentRuns', [{ start: 0x15000, pages: 2 }]],
    ]);
  });

  it('splits runs over as many frames as the maximum requires', () => {
    const max = 44 + 4104; // one page per chunk; (max - 40) / 16 = 256 runs per frame
    const { w, frames } = writer({ maxFrameBytes: max });
    w.begin({ ...BEGIN, mode: SnapshotMode.Full, parentId: undefined });
    w.beginVma(anon(0, 1000 * 8192));
    for (let i = 0; i < 600; i++) w.addZero(i * 8192, 1);
    w.endVma();
    const runFrames = frames().filter((f) => f.type === FrameType.ZeroRuns);
    expect(runFrames.map((f) => ('runs' in f.body ? f.body.runs.length : 0))).toEqual([256, 256, 88]);
    for (const f of frames()) expect(f.raw.length).toBeLessThanOrEqual(max);
  });

  it('ends with the counts and a SHA-256 over the 36-byte header of every earlier frame', () => {
    const { w, raw, frames } = writer();
    w.begin(BEGIN);
    w.beginVma(anon(0x10000, 0x20000));
    w.addPages([0x10000, 0x12000], pages(2));
    w.addZero(0x13000, 2);
    w.addFile(0x15000, 3);
    w.addParent(0x18000, 4);
    w.endVma();
    w.beginVma(anon(0x20000, 0x21000, { flags: VmaFlag.NoContents, kind: VmaKind.Vvar, path: '[vvar]' }));
    w.endVma();
    const end = w.end();
    const digest = createHash('sha256');
    for (const f of raw.slice(0, -1)) digest.update(f.subarray(0, HEADER_BYTES));
    expect(end).toEqual({ vmaCount: 2, dataPages: 2, zeroPages: 2, filePages: 3, parentPages: 4, frameCount: raw.length - 1, digest: digest.digest() });
    const v = new StreamValidator(ID);
    for (const f of frames()) v.accept(f);
    expect(v.state).toBe('end');
  });

  it('aborts at any point, dropping the chunk being filled, and writes nothing after', () => {
    const { w, frames } = writer();
    w.begin(BEGIN);
    w.beginVma(anon(0x10000, 0x20000));
    w.addPages([0x10000], pages(1));
    w.abort('PV_PROCESS_EXITED', 'gone');
    w.abort('PV_TIMEOUT', 'second abort is a no-op');
    expect(types(frames())).toEqual(['SnapshotBegin', 'VmaBegin', 'Abort']);
    expect(() => w.end()).toThrow();
    expect(() => w.beginVma(anon(0x30000, 0x31000))).toThrow();
  });

  it('does not abort a snapshot that has ended', () => {
    const { w, frames } = writer();
    w.begin(BEGIN);
    w.end();
    w.abort('PV_TIMEOUT', 'late');
    expect(types(frames())).toEqual(['SnapshotBegin', 'SnapshotEnd']);
  });

  it('refuses to be driven out of order', () => {
    const { w } = writer();
    expect(() => w.beginVma(anon(0x10000, 0x20000))).toThrow(/before begin/); // used to hang in addPages
    w.begin(BEGIN);
    expect(() => w.addPages([0x10000], pages(1))).toThrow(/no VMA/);
    expect(() => w.addZero(0x10000, 1)).toThrow(/no VMA/);
    expect(() => w.endVma()).toThrow(/no VMA/);
    w.beginVma(anon(0x10000, 0x20000));
    expect(() => w.beginVma(anon(0x20000, 0x30000))).toThrow(/inside a VMA/);
    expect(() => w.end()).toThrow(/inside a VMA/);
    w.addPages([0x12000], pages(1));
    expect(() => w.addPages([0x12000], pages(1))).toThrow(/not after/);
    expect(() => w.addPages([0x11000], pages(1))).toThrow(/not after/);
    w.endVma();
    w.beginVma(anon(0x20000, 0x30000, { flags: VmaFlag.NoContents }));
    expect(() => w.addPages([0x20000], pages(1))).toThrow(/carries no pages/);
  });

  it('refuses page data shorter than the pages it is told about, instead of sending uninitialised memory', () => {
    const { w } = writer();
    w.begin(BEGIN);
    w.beginVma(anon(0x10000, 0x20000));
    expect(codeOf(() => w.addPages([0x10000, 0x11000], Buffer.alloc(10)))).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(codeOf(() => w.addPages([0x10000, 0x11000], pages(2), 1))).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(codeOf(() => w.addPages([0x10000], pages(2), 0, 2))).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(codeOf(() => w.addPages([0x10000], pages(2), -4096, 1))).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(w.counts.dataPages).toBe(0);
  });

  it('refuses a maximum frame that cannot hold one page or passes 64 MiB, and a page size readers refuse', () => {
    expect(codeOf(() => writer({ maxFrameBytes: 44 + 4104 - 1 }).w.begin(BEGIN))).toBe(ErrorCodes.CONFIG_INVALID);
    expect(codeOf(() => writer({ maxFrameBytes: 44 + 4104 }).w.begin(BEGIN))).toBe('no error');
    expect(codeOf(() => writer({ maxFrameBytes: ABSOLUTE_MAX_FRAME_BYTES + 1 }).w.begin(BEGIN))).toBe(ErrorCodes.CONFIG_INVALID);
    expect(codeOf(() => writer({ maxFrameBytes: NaN }).w.begin(BEGIN))).toBe(ErrorCodes.CONFIG_INVALID);
    for (const pageSize of [0, 1000, 2048, 6000, 131072]) {
      expect(codeOf(() => writer().w.begin({ ...BEGIN, pageSize }))).toBe(ErrorCodes.INVALID_ARGUMENT);
    }
  });

  it('refuses to write a header frame larger than its maximum (long strings under a small maximum)', () => {
    const { w, raw } = writer({ maxFrameBytes: 44 + 4104 });
    w.begin(BEGIN);
    expect(codeOf(() => w.beginVma(anon(0x10000, 0x20000, { path: '/x'.repeat(3000) })))).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect(raw.every((f) => f.length <= 44 + 4104)).toBe(true);
    expect(codeOf(() => writer({ maxFrameBytes: 44 + 4104 }).w.begin({ ...BEGIN, cmdline: 'a'.repeat(5000) }))).toBe(ErrorCodes.INVALID_ARGUMENT);
  });

  it('hands each frame over as its own buffer, which the writer never touches again', () => {
    const { w, raw } = writer({ maxFrameBytes: 44 + 4104 });
    w.begin(BEGIN);
    w.beginVma(anon(0x10000, 0x20000));
    w.addPages([0x10000, 0x11000], pages(2));
    const first = Buffer.from(raw[2]!);
    w.addPages([0x12000], pages(1, 99));
    w.endVma();
    expect(raw[2]!.equals(first)).toBe(true);
    expect(raw[2]!.buffer).not.toBe(raw[3]!.buffer);
  });

  it('cuts the short last chunks of many small VMAs from shared slabs, and seals them itself: the same bytes, no hand-off each', () => {
    // 300 one-page VMAs, each announced (its last chunk laid out for one page), with and without a sealer.
    const run = (sealer?: FrameSealer) => {
      const { w, raw } = writer(sealer ? { sealer } : {});
      w.begin(BEGIN);
      for (let v = 0; v < 300; v++) {
        const start = 0x100000 + v * 0x2000;
        w.beginVma(anon(start, start + 0x1000));
        w.expectPages(1);
        const sp = w.pageSpace();
        pages(1, v).copy(sp.frame, sp.offset);
        w.placedPages([start], 1);
        w.endVma();
      }
      w.end();
      return raw;
    };
    const plain = run();
    const chunks = plain.filter((f) => f[5] === FrameType.PageChunk);
    expect(chunks.length).toBe(300);
    // Each its own bytes, cut from a few slabs rather than a buffer each.
    expect(new Set(chunks.map((f) => f.buffer)).size).toBeLessThanOrEqual(3);
    const v = new StreamValidator(ID);
    for (const f of plain) v.accept(decodeFrame(f, DEFAULT_MAX_FRAME_BYTES));
    expect(chunks.map((f, i) => decodeFrame(f, DEFAULT_MAX_FRAME_BYTES).type === FrameType.PageChunk && f.subarray(-4096).equals(pages(1, i)))).toEqual(chunks.map(() => true));
    const sealer = new FrameSealer();
    const submit = vi.spyOn(sealer, 'submit');
    const sealed = run(sealer);
    expect(submit).not.toHaveBeenCalled();
    expect(Buffer.concat(sealed).equals(Buffer.concat(plain))).toBe(true);
    // A full chunk (254 pages, about 1 MiB) still goes to the sealer's thread; the 6 pages after it do not.
    const { w } = writer({ sealer });
    w.begin(BEGIN);
    w.beginVma(anon(0x100000, 0x100000 + 260 * 4096));
    w.addPages(Array.from({ length: 260 }, (_, k) => 0x100000 + k * 4096), pages(260));
    w.endVma();
    w.end();
    expect(submit).toHaveBeenCalledTimes(1);
  });
});
