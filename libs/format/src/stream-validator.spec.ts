import { createHash } from 'node:crypto';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { Consistency, FrameType, HEADER_BYTES, SnapshotMode, VmaFlag, VmaKind } from './constants';
import { decodeFrame } from './frame';
import { SnapshotWriter } from './snapshot-writer';
import { StreamValidator } from './stream-validator';
import type { PageRun, SnapshotBegin, SnapshotEnd, VmaHeader } from './types';
import {
  encodeAbort, encodePageChunk, encodeRuns, encodeSnapshotBegin, encodeSnapshotEnd, encodeVmaBegin, encodeVmaEnd,
} from './v1/encode';

const ID = Buffer.from('11111111111111111111111111111111', 'hex');
const OTHER = Buffer.from('22222222222222222222222222222222', 'hex');
const PS = 4096;
const FULL: SnapshotBegin = {
  pageSize: PS, pid: 1, startTimeMs: 0, mode: SnapshotMode.Full, consistency: Consistency.Frozen, tenant: 't', host: 'h', cmdline: 'c',
};
const INCR: SnapshotBegin = { ...FULL, mode: SnapshotMode.Incremental, parentId: OTHER };
type RunType = FrameType.ZeroRuns | FrameType.FileRuns | FrameType.ParentRuns;

/**
 * Builds streams frame by frame with the raw encoders, so any frame can be wrong on purpose. It keeps the
 * counts and digest a correct snapshot-end would carry; a test overrides what it wants to break.
 */
class Stream {
  readonly frames: Buffer[] = [];
  private seq = 0;
  private vmas = 0;
  private readonly counts = { dataPages: 0, zeroPages: 0, filePages: 0, parentPages: 0 };
  id: Uint8Array = ID;

  at(seq: number): this {
    this.seq = seq;
    return this;
  }
  private add(f: Buffer): this {
    this.frames.push(f);
    this.seq++;
    return this;
  }
  begin(b: SnapshotBegin = FULL): this {
    return this.add(encodeSnapshotBegin(this.id, this.seq, b));
  }
  vma(start: number, end: number, over: Partial<VmaHeader> = {}): this {
    const v: VmaHeader = {
      index: this.vmas++, start, end, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '', inode: 0,
      path: '', vmFlags: '', reason: '', sharedKey: '', ...over,
    };
    return this.add(encodeVmaBegin(this.id, this.seq, v));
  }
  pages(addrs: number[], pageSize = PS): this {
    this.counts.dataPages += addrs.length;
    return this.add(encodePageChunk(this.id, this.seq, pageSize, addrs, Buffer.alloc(addrs.length * pageSize, 0x5a)));
  }
  runs(type: RunType, runs: PageRun[]): this {
    const key = type === FrameType.ZeroRuns ? 'zeroPages' : type === FrameType.FileRuns ? 'filePages' : 'parentPages';
    for (const r of runs) this.counts[key] += r.pages;
    return this.add(encodeRuns(this.id, this.seq, type, runs));
  }
  zero = (start: number, pages = 1) => this.runs(FrameType.ZeroRuns, [{ start, pages }]);
  file = (start: number, pages = 1) => this.runs(FrameType.FileRuns, [{ start, pages }]);
  parent = (start: number, pages = 1) => this.runs(FrameType.ParentRuns, [{ start, pages }]);
  vmaEnd(index = this.vmas - 1): this {
    return this.add(encodeVmaEnd(this.id, this.seq, index));
  }
  end(over: Partial<SnapshotEnd> = {}): this {
    const digest = createHash('sha256');
    for (const f of this.frames) digest.update(f.subarray(0, HEADER_BYTES));
    const e = { vmaCount: this.vmas, ...this.counts, frameCount: this.frames.length, digest: digest.digest(), ...over };
    return this.add(encodeSnapshotEnd(this.id, this.seq, e));
  }
  abort(): this {
    return this.add(encodeAbort(this.id, this.seq, 'PV_TIMEOUT', 'gave up'));
  }
  /** A frame of another snapshot, with the sequence number this one expects next. */
  foreign(): this {
    return this.add(encodeVmaEnd(OTHER, this.seq, 0));
  }
}

/** The first error the validator raises over the whole stream, or its final state. */
function verdict(s: Stream): string {
  const v = new StreamValidator(ID);
  try {
    for (const f of s.frames) v.accept(decodeFrame(f));
  } catch (e) {
    if (e instanceof PvError) return e.code;
    throw e;
  }
  return v.state;
}

/** A valid full snapshot up to (not including) its end: one VMA 0x10000-0x20000 with a page at 0x10000. */
const opened = () => new Stream().begin().vma(0x10000, 0x20000).pages([0x10000]);

describe('StreamValidator', () => {
  it('accepts what SnapshotWriter writes, and exposes the snapshot header', () => {
    const raw: Buffer[] = [];
    const w = new SnapshotWriter({ snapshotId: ID, emit: (f) => raw.push(f) });
    w.begin(INCR);
    w.beginVma({ start: 0x10000, end: 0x20000, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '', inode: 0, path: '', vmFlags: '', reason: '', sharedKey: '' });
    w.addPages([0x10000, 0x1f000], Buffer.alloc(2 * PS));
    w.addZero(0x11000, 1);
    w.addFile(0x12000, 1);
    w.addParent(0x13000, 12);
    w.endVma();
    w.end();
    const v = new StreamValidator(ID);
    for (const f of raw) v.accept(decodeFrame(f));
    expect(v.state).toBe('end');
    expect(v.header).toEqual(INCR);
  });

  it('accepts the smallest snapshot: begin then end', () => {
    expect(verdict(new Stream().begin().end())).toBe('end');
  });

  it('is open until the end frame arrives', () => {
    expect(verdict(opened().vmaEnd())).toBe('open');
  });

  describe('sequence', () => {
    it('must start at 0', () => expect(verdict(new Stream().at(1).begin())).toBe(ErrorCodes.STREAM_SEQUENCE));
    it('must have no gap', () => expect(verdict(opened().at(4).vmaEnd())).toBe(ErrorCodes.STREAM_SEQUENCE));
    it('must not repeat', () => expect(verdict(opened().at(2).vmaEnd())).toBe(ErrorCodes.STREAM_SEQUENCE));
    it('names the expected and received numbers', () => {
      const v = new StreamValidator(ID);
      v.accept(decodeFrame(new Stream().begin().frames[0]!));
      try {
        v.accept(decodeFrame(new Stream().at(5).begin().frames[0]!));
      } catch (e) {
        expect((e as PvError).details).toMatchObject({ expected: 1, got: 5, snapshot: ID.toString('hex') });
        return;
      }
      throw new Error('accepted');
    });
  });

  describe('framing of the snapshot', () => {
    it('refuses a frame of another snapshot', () => expect(verdict(opened().foreign())).toBe(ErrorCodes.STREAM_ORDER));
    it('refuses pages before begin', () => expect(verdict(new Stream().vma(0x10000, 0x20000))).toBe(ErrorCodes.STREAM_ORDER));
    it('refuses a chunk before begin', () => expect(verdict(new Stream().pages([0x10000]))).toBe(ErrorCodes.STREAM_ORDER));
    it('refuses an end before begin', () => expect(verdict(new Stream().end())).toBe(ErrorCodes.STREAM_ORDER));
    it('refuses a second begin', () => expect(verdict(new Stream().begin().begin())).toBe(ErrorCodes.STREAM_ORDER));
    it('accepts an abort as the very first frame', () => expect(verdict(new Stream().abort())).toBe('abort'));
    it('accepts an abort inside a VMA', () => expect(verdict(opened().abort())).toBe('abort'));
    it('refuses frames after the end', () => expect(verdict(new Stream().begin().end().vma(0x10000, 0x20000))).toBe(ErrorCodes.STREAM_ORDER));
    it('refuses a second end', () => expect(verdict(new Stream().begin().end().end())).toBe(ErrorCodes.STREAM_ORDER));
    it('refuses frames after an abort', () => expect(verdict(opened().abort().vmaEnd())).toBe(ErrorCodes.STREAM_ORDER));
    it('refuses an end inside a VMA', () => expect(verdict(opened().end())).toBe(ErrorCodes.STREAM_ORDER));
    it('refuses an incremental snapshot without a parent', () => {
      expect(verdict(new Stream().begin({ ...INCR, parentId: undefined }))).toBe(ErrorCodes.FRAME_MALFORMED);
    });
  });

  describe('VMAs', () => {
    const twoVmas = (a: [number, number], b: [number, number]) =>
      new Stream().begin().vma(...a).vmaEnd().vma(...b).vmaEnd().end();
    it('may touch', () => expect(verdict(twoVmas([0x10000, 0x20000], [0x20000, 0x30000]))).toBe('end'));
    it('may not overlap', () => expect(verdict(twoVmas([0x10000, 0x20000], [0x1f000, 0x30000]))).toBe(ErrorCodes.STREAM_ADDRESS));
    it('may not descend', () => expect(verdict(twoVmas([0x10000, 0x20000], [0x1000, 0x2000]))).toBe(ErrorCodes.STREAM_ADDRESS));
    it('may not repeat', () => expect(verdict(twoVmas([0x10000, 0x20000], [0x10000, 0x20000]))).toBe(ErrorCodes.STREAM_ADDRESS));
    it.each([
      ['an unaligned start', 0x10800, 0x20000],
      ['an unaligned end', 0x10000, 0x20001],
      ['no pages', 0x10000, 0x10000],
      ['an end below its start', 0x20000, 0x10000],
    ])('may not have %s', (_, start, end) => expect(verdict(new Stream().begin().vma(start, end))).toBe(ErrorCodes.STREAM_ADDRESS));
    it('are numbered from 0 without gaps', () => {
      expect(verdict(new Stream().begin().vma(0x10000, 0x20000, { index: 1 }))).toBe(ErrorCodes.STREAM_ORDER);
    });
    it('may not begin inside another', () => expect(verdict(opened().vma(0x20000, 0x30000))).toBe(ErrorCodes.STREAM_ORDER));
    it('must end with their own index', () => expect(verdict(opened().vmaEnd(5))).toBe(ErrorCodes.STREAM_ORDER));
    it('cannot end when none is open', () => expect(verdict(new Stream().begin().vmaEnd(0))).toBe(ErrorCodes.STREAM_ORDER));
    it('may lie above 2^53, up to the vsyscall page', () => {
      const s = new Stream().begin().vma(0xffff_ffff_ff60_0000, 0xffff_ffff_ff60_2000).pages([0xffff_ffff_ff60_1000]).zero(0xffff_ffff_ff60_0000);
      expect(verdict(s.vmaEnd().end())).toBe('end');
    });
  });

  describe('pages in a chunk', () => {
    const chunk = (addrs: number[]) => new Stream().begin().vma(0x10000, 0x20000).pages(addrs);
    it('must lie inside the VMA', () => {
      expect(verdict(chunk([0xf000]))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(chunk([0x20000]))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(chunk([0x1f000]))).toBe('open');
    });
    it('must be page-aligned', () => expect(verdict(chunk([0x10800]))).toBe(ErrorCodes.STREAM_ADDRESS));
    it('must ascend within a chunk', () => expect(verdict(chunk([0x12000, 0x11000]))).toBe(ErrorCodes.STREAM_ADDRESS));
    it('must not repeat within a chunk', () => expect(verdict(chunk([0x12000, 0x12000]))).toBe(ErrorCodes.STREAM_ADDRESS));
    it('must ascend across chunks', () => expect(verdict(chunk([0x12000]).pages([0x11000]))).toBe(ErrorCodes.STREAM_ADDRESS));
    it('must use the snapshot page size', () => {
      expect(verdict(new Stream().begin().vma(0x10000, 0x20000).pages([0x10000], 8192))).toBe(ErrorCodes.FRAME_MALFORMED);
    });
    it('must not be empty', () => expect(verdict(chunk([]))).toBe(ErrorCodes.FRAME_MALFORMED));
    it('name the address in the error', () => {
      const v = new StreamValidator(ID);
      const s = chunk([0x20000]);
      try {
        for (const f of s.frames) v.accept(decodeFrame(f));
      } catch (e) {
        expect((e as PvError).message).toContain('0x20000');
        expect((e as PvError).details).toMatchObject({ address: '0x20000' });
        return;
      }
      throw new Error('accepted');
    });
  });

  describe('runs', () => {
    const inVma = () => new Stream().begin(INCR).vma(0x10000, 0x20000);
    it('may not be empty', () => expect(verdict(inVma().zero(0x10000, 0))).toBe(ErrorCodes.FRAME_MALFORMED));
    it('must lie inside the VMA', () => {
      expect(verdict(inVma().zero(0x1f000, 2))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().file(0xf000, 1))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().zero(0x10000, 16))).toBe('open');
    });
    it('may not have a page count so large the end overflows', () => {
      expect(verdict(inVma().zero(0x10000, 2 ** 52))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().runs(FrameType.ZeroRuns, [{ start: 0x10000, pages: 2 ** 60 }]))).toBe(ErrorCodes.STREAM_ADDRESS);
    });
    it('must be page-aligned', () => expect(verdict(inVma().parent(0x10010))).toBe(ErrorCodes.STREAM_ADDRESS));
    it('must ascend and not overlap within a kind', () => {
      expect(verdict(inVma().runs(FrameType.ZeroRuns, [{ start: 0x12000, pages: 1 }, { start: 0x11000, pages: 1 }]))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().runs(FrameType.ZeroRuns, [{ start: 0x11000, pages: 2 }, { start: 0x12000, pages: 1 }]))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().zero(0x11000, 2).zero(0x12000))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().zero(0x11000, 2).zero(0x13000))).toBe('open');
    });
    it('come in the canonical order: chunks, zero, file, parent', () => {
      expect(verdict(inVma().zero(0x11000).pages([0x10000]))).toBe(ErrorCodes.STREAM_ORDER);
      expect(verdict(inVma().file(0x11000).zero(0x10000))).toBe(ErrorCodes.STREAM_ORDER);
      expect(verdict(inVma().parent(0x11000).file(0x10000))).toBe(ErrorCodes.STREAM_ORDER);
      expect(verdict(inVma().pages([0x13000]).zero(0x12000).file(0x11000).parent(0x10000).vmaEnd().end())).toBe('end');
    });
    it('may not give a page two kinds (data and zero, zero and parent, ...)', () => {
      expect(verdict(inVma().pages([0x12000]).zero(0x11000, 2))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().pages([0x10000, 0x11000]).zero(0x12000).file(0x11000))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().zero(0x14000, 4).parent(0x10000, 5))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().pages([0x10000]).zero(0x11000).file(0x12000).parent(0x13000, 13).parent(0x10000))).toBe(ErrorCodes.STREAM_ADDRESS);
      expect(verdict(inVma().pages([0x10000, 0x12000]).zero(0x11000).parent(0x13000, 13).vmaEnd().end())).toBe('end');
    });
    it('of the parent are refused in a full snapshot', () => {
      expect(verdict(new Stream().begin(FULL).vma(0x10000, 0x20000).parent(0x10000))).toBe(ErrorCodes.STREAM_ORDER);
    });
    it('are refused outside a VMA', () => expect(verdict(new Stream().begin().zero(0x10000))).toBe(ErrorCodes.STREAM_ORDER));
  });

  describe('a VMA that carries no contents', () => {
    const noContents = (flags: number) => new Stream().begin(INCR).vma(0x10000, 0x12000, { flags, kind: VmaKind.Vdso, path: '[vdso]' });
    it.each([VmaFlag.NoContents, VmaFlag.SharedElsewhere])('(flags %i) refuses pages and runs of every kind', (flags) => {
      expect(verdict(noContents(flags).pages([0x10000]))).toBe(ErrorCodes.STREAM_ORDER);
      expect(verdict(noContents(flags).zero(0x10000))).toBe(ErrorCodes.STREAM_ORDER);
      expect(verdict(noContents(flags).file(0x10000))).toBe(ErrorCodes.STREAM_ORDER);
      expect(verdict(noContents(flags).parent(0x10000))).toBe(ErrorCodes.STREAM_ORDER);
      expect(verdict(noContents(flags).vmaEnd().end())).toBe('end');
    });
  });

  describe('snapshot-end', () => {
    const full = () => new Stream().begin(INCR).vma(0x10000, 0x20000).pages([0x10000]).zero(0x11000).file(0x12000).parent(0x13000).vmaEnd();
    it('is accepted with the right counts and digest', () => expect(verdict(full().end())).toBe('end'));
    it.each([
      ['vmaCount', { vmaCount: 2 }],
      ['dataPages', { dataPages: 0 }],
      ['zeroPages', { zeroPages: 2 }],
      ['filePages', { filePages: 0 }],
      ['parentPages', { parentPages: 2 }],
      ['frameCount', { frameCount: 5 }],
      ['digest', { digest: Buffer.alloc(32) }],
    ])('is refused with a wrong %s', (_, over) => expect(verdict(full().end(over))).toBe(ErrorCodes.STREAM_DIGEST));
  });

  describe('the digest', () => {
    /** Two writes of "the same" snapshot id that differ only in one page's contents. */
    const attempt = (fill: number) => {
      const raw: Buffer[] = [];
      const w = new SnapshotWriter({ snapshotId: ID, emit: (f) => raw.push(f) });
      w.begin(FULL);
      w.beginVma({ start: 0x10000, end: 0x20000, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '', inode: 0, path: '', vmFlags: '', reason: '', sharedKey: '' });
      w.addPages([0x10000], Buffer.alloc(PS, fill));
      w.endVma();
      w.end();
      return raw;
    };

    it('catches a frame of one attempt spliced into another with the right sequence number', () => {
      const a = attempt(1);
      const b = attempt(2);
      const spliced = [...a.slice(0, 2), b[2]!, ...a.slice(3)];
      const s = new Stream();
      s.frames.push(...spliced);
      expect(verdict(s)).toBe(ErrorCodes.STREAM_DIGEST);
      s.frames.splice(0, s.frames.length, ...a);
      expect(verdict(s)).toBe('end');
    });
  });
});
