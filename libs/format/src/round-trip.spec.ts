import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Consistency, FrameType, HEADER_BYTES, SnapshotMode, VmaFlag, VmaKind } from './constants';
import { FrameSplitter } from './frame';
import { SnapshotWriter } from './snapshot-writer';
import { StreamValidator } from './stream-validator';
import type { Frame, PageRun, SnapshotBegin, VmaHeader } from './types';

const ID = Buffer.from('feedfacecafebeef0011223344556677', 'hex');
const ABSENT = 0;
const DATA = 1;

interface ModelVma {
  header: Omit<VmaHeader, 'index'>;
  /** one entry per page of the VMA: 0 absent, 1 data, 2 zero, 3 file, 4 parent */
  pages: number[];
}
interface Model {
  begin: SnapshotBegin;
  maxFrameBytes: number;
  vmas: ModelVma[];
}

const pageBytes = (addr: number, ps: number) => {
  const b = Buffer.alloc(ps, (addr / ps) & 0xff);
  b.writeDoubleLE(addr, 0);
  return b;
};

const arbModel: fc.Arbitrary<Model> = fc
  .record({
    pageSize: fc.constantFrom(4096, 4096, 4096, 8192, 16384, 65536),
    incremental: fc.boolean(),
    chunkPages: fc.integer({ min: 1, max: 5 }),
    slack: fc.nat(),
    base: fc.constantFrom(0, 0x5555_5555_0000, 0x7f00_0000_0000, 2 ** 53, 0xffff_ffff_0000_0000),
    cmdline: fc.string({ maxLength: 40, unit: 'grapheme' }),
    vmas: fc.array(
      fc.record({
        gap: fc.integer({ min: 0, max: 3 }),
        pages: fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 1, maxLength: 24 }),
        noContents: fc.boolean(),
        path: fc.string({ maxLength: 30, unit: 'grapheme' }),
        prot: fc.integer({ min: 0, max: 7 }),
      }),
      { maxLength: 4 },
    ),
  })
  .map((r) => {
    const ps = r.pageSize;
    let at = r.base;
    const vmas = r.vmas.map((v): ModelVma => {
      const start = at + v.gap * ps;
      at = start + v.pages.length * ps;
      const noContents = v.noContents && v.pages.length % 3 === 0; // about one VMA in six
      return {
        header: {
          start, end: at, prot: v.prot, flags: noContents ? VmaFlag.NoContents : 0, pgoff: v.gap * ps,
          kind: noContents ? VmaKind.Vdso : VmaKind.PrivateFile, dev: '08:01', inode: at / ps, path: v.path,
          vmFlags: 'rd mr', reason: '', sharedKey: '',
        },
        pages: v.pages.map((k) => (noContents || (k === 4 && !r.incremental) ? ABSENT : k)),
      };
    });
    return {
      begin: {
        pageSize: ps, pid: 1234, startTimeMs: 1_700_000_000_000, mode: r.incremental ? SnapshotMode.Incremental : SnapshotMode.Full,
        consistency: Consistency.Frozen, tenant: 'tenant', host: 'host', cmdline: r.cmdline,
        ...(r.incremental ? { parentId: Buffer.alloc(16, 0xee) } : {}),
      },
      maxFrameBytes: HEADER_BYTES + 8 + r.chunkPages * (8 + ps) + (r.slack % (8 + ps)),
      vmas,
    };
  });

/** Maximal runs of one page kind within a VMA. */
function runsOf(v: ModelVma, kind: number, ps: number): PageRun[] {
  const out: PageRun[] = [];
  v.pages.forEach((k, i) => {
    if (k !== kind) return;
    const addr = v.header.start + i * ps;
    const last = out[out.length - 1];
    if (last && last.start + last.pages * ps === addr) last.pages++;
    else out.push({ start: addr, pages: 1 });
  });
  return out;
}

/** Writes the model, giving pages in batches of the given sizes and runs page by page or whole. */
function write(m: Model, batches: number[], pageByPage: boolean): Buffer {
  const out: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: ID, emit: (f) => out.push(f), maxFrameBytes: m.maxFrameBytes });
  const ps = m.begin.pageSize;
  w.begin(m.begin);
  let b = 0;
  for (const v of m.vmas) {
    w.beginVma(v.header);
    const data = v.pages.flatMap((k, i) => (k === DATA ? [v.header.start + i * ps] : []));
    for (let i = 0; i < data.length; ) {
      const n = Math.min(data.length - i, 1 + (batches[b++ % batches.length] ?? 0));
      const addrs = data.slice(i, i + n);
      w.addPages(addrs, Buffer.concat(addrs.map((a) => pageBytes(a, ps))));
      i += n;
    }
    // Runs may be given in any order relative to the pages; the writer puts them in canonical order.
    for (let k = 2; k <= 4; k++) {
      for (const r of runsOf(v, k, ps)) {
        const add = (s: number, n: number) => (k === 2 ? w.addZero(s, n) : k === 3 ? w.addFile(s, n) : w.addParent(s, n));
        if (pageByPage) for (let p = 0; p < r.pages; p++) add(r.start + p * ps, 1);
        else add(r.start, r.pages);
      }
    }
    w.endVma();
  }
  w.end();
  for (const f of out) expect(f.length).toBeLessThanOrEqual(m.maxFrameBytes);
  return Buffer.concat(out);
}

/** Reads a stream back into the model's shape. */
function read(bin: Buffer, cuts: number[], maxFrameBytes: number): { model: Omit<Model, 'maxFrameBytes'>; frames: Frame[] } {
  const s = new FrameSplitter(maxFrameBytes);
  const frames: Frame[] = [];
  let from = 0;
  for (const to of [...cuts.map((c) => c % (bin.length + 1)).sort((a, b) => a - b), bin.length]) {
    frames.push(...s.push(bin.subarray(from, Math.max(from, to))));
    from = Math.max(from, to);
  }
  s.end();
  const v = new StreamValidator(ID);
  let begin: SnapshotBegin | undefined;
  const vmas: ModelVma[] = [];
  for (const f of frames) {
    v.accept(f);
    const b = f.body;
    const cur = vmas[vmas.length - 1]!;
    const ps = begin?.pageSize ?? 0;
    const mark = (start: number, pages: number, kind: number) => {
      for (let p = 0; p < pages; p++) cur.pages[(start - cur.header.start) / ps + p] = kind;
    };
    if (b.type === FrameType.SnapshotBegin) begin = b.begin;
    if (b.type === FrameType.VmaBegin) {
      const { index, ...header } = b.vma;
      expect(index).toBe(vmas.length);
      vmas.push({ header, pages: new Array((header.end - header.start) / ps).fill(ABSENT) });
    }
    if (b.type === FrameType.PageChunk) {
      b.addresses.forEach((a, i) => {
        expect(b.data.subarray(i * ps, (i + 1) * ps).equals(pageBytes(a, ps))).toBe(true);
        mark(a, 1, DATA);
      });
    }
    if (b.type === FrameType.ZeroRuns || b.type === FrameType.FileRuns || b.type === FrameType.ParentRuns) {
      for (const r of b.runs) mark(r.start, r.pages, 2 + b.type - FrameType.ZeroRuns);
    }
  }
  expect(v.state).toBe('end');
  return { model: { begin: begin!, vmas }, frames };
}

describe('random valid snapshots', () => {
  it('round-trip: write, cut the bytes anywhere, split, decode, validate, and get the same memory back', () => {
    fc.assert(
      fc.property(arbModel, fc.array(fc.nat(), { maxLength: 8 }), fc.array(fc.nat({ max: 6 }), { minLength: 1, maxLength: 5 }), fc.boolean(), (m, cuts, batches, pageByPage) => {
        const bin = write(m, batches, pageByPage);
        const { model } = read(bin, cuts, m.maxFrameBytes);
        expect(model).toEqual({ begin: m.begin, vmas: m.vmas });
      }),
      { numRuns: 120 },
    );
  });

  it('have one encoding: however pages and runs are batched, and re-encoded from what was read, the bytes are the same', () => {
    fc.assert(
      fc.property(arbModel, fc.array(fc.nat({ max: 6 }), { minLength: 1, maxLength: 5 }), (m, batches) => {
        const a = write(m, [0], false);
        expect(write(m, batches, true).equals(a)).toBe(true);
        const { model } = read(a, [], m.maxFrameBytes);
        expect(write({ ...model, maxFrameBytes: m.maxFrameBytes }, [1000], false).equals(a)).toBe(true);
      }),
      { numRuns: 60 },
    );
  });

  it('count every page once in snapshot-end', () => {
    fc.assert(
      fc.property(arbModel, (m) => {
        const { frames } = read(write(m, [3], false), [], m.maxFrameBytes);
        const last = frames[frames.length - 1]!.body;
        if (last.type !== FrameType.SnapshotEnd) throw new Error('no end');
        const all = m.vmas.flatMap((v) => v.pages);
        const n = (k: number) => all.filter((x) => x === k).length;
        expect(last.end).toMatchObject({ vmaCount: m.vmas.length, dataPages: n(1), zeroPages: n(2), filePages: n(3), parentPages: n(4), frameCount: frames.length - 1 });
      }),
      { numRuns: 40 },
    );
  });
});
