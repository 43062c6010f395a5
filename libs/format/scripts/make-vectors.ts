/**
 * The golden test vectors of the stream format (libs/format/test-vectors), defined as data and built with
 * SnapshotWriter. tsx is not installed, so the spec is the runner:
 *
 *   PV_WRITE_VECTORS=1 npx vitest run src/golden-vectors.spec.ts   # (re)write the files
 *   npx vitest run src/golden-vectors.spec.ts                      # check them
 *
 * A vector is two files: NAME.bin (the frames, concatenated) and NAME.json (what a reader must decode
 * from them). Every input is fixed, so the bytes never change unless the format does — and then the
 * format version changes too (docs/format.md, "Versioning").
 */
import { createHash } from 'node:crypto';
import { Consistency, FrameType, Prot, SnapshotMode, VmaFlag, VmaKind } from '../src/constants';
import { SnapshotWriter } from '../src/snapshot-writer';
import type { PageRun, SnapshotBegin, VmaHeader } from '../src/types';

/** Page contents described in a line, so the JSON stays readable and every byte is reproducible. */
export type Pattern =
  | { fill: number }
  | { counter: { mul: number; add: number } }
  | { text: string };

export function patternBytes(p: Pattern, pageSize: number): Buffer {
  if ('fill' in p) return Buffer.alloc(pageSize, p.fill);
  const out = Buffer.alloc(pageSize);
  if ('text' in p) out.fill(p.text, 0, pageSize, 'latin1');
  else for (let i = 0; i < pageSize; i++) out[i] = (i * p.counter.mul + p.counter.add) & 0xff;
  return out;
}

export interface VectorVma {
  header: Omit<VmaHeader, 'index'>;
  pages: { address: number; pattern: Pattern }[];
  zeroRuns: PageRun[];
  fileRuns: PageRun[];
  parentRuns: PageRun[];
}

export interface VectorCase {
  name: string;
  description: string;
  snapshotId: string;
  maxFrameBytes?: number;
  begin: SnapshotBegin;
  vmas: VectorVma[];
  /** Ends the stream with abort after beginning this VMA and adding its pages (which are discarded). */
  abort?: { vma: VectorVma; code: string; message: string };
}

const FULL_ID = '00112233445566778899aabbccddeeff';
const anon = (start: number, end: number): Omit<VmaHeader, 'index'> => ({
  start, end, prot: Prot.Read | Prot.Write, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon,
  dev: '00:00', inode: 0, path: '', vmFlags: 'rd wr mr mw me ac', reason: '', sharedKey: '',
});
const libdemo = (start: number, end: number): Omit<VmaHeader, 'index'> => ({
  start, end, prot: Prot.Read | Prot.Exec, flags: 0, pgoff: 0x2000, kind: VmaKind.PrivateFile,
  dev: '08:01', inode: 131073, path: '/usr/lib/libdemo.so.1', vmFlags: 'rd ex mr mw me', reason: '', sharedKey: '',
});
const none = { zeroRuns: [], fileRuns: [], parentRuns: [], pages: [] };
const begin = (over: Partial<SnapshotBegin>): SnapshotBegin => ({
  pageSize: 4096, pid: 4242, startTimeMs: 1_700_000_000_000, mode: SnapshotMode.Full,
  consistency: Consistency.Frozen, tenant: 'acme', host: 'node-1.example', cmdline: '/usr/bin/demo\0--serve\0', ...over,
});

export const VECTOR_CASES: VectorCase[] = [
  {
    name: 'full-snapshot',
    description: 'Full snapshot, page size 4096, default max frame: an anonymous VMA (3 data pages, one untouched page, a 2-page zero run), a private file VMA (a 3-page file run and one data page) and a [vdso] header without contents.',
    snapshotId: FULL_ID,
    begin: begin({}),
    vmas: [
      {
        ...none,
        header: anon(0x7f00_0000_0000, 0x7f00_0000_6000),
        pages: [
          { address: 0x7f00_0000_0000, pattern: { fill: 0xaa } },
          { address: 0x7f00_0000_1000, pattern: { counter: { mul: 1, add: 0 } } },
          { address: 0x7f00_0000_3000, pattern: { text: 'pagevault ' } },
        ],
        zeroRuns: [{ start: 0x7f00_0000_4000, pages: 2 }],
      },
      {
        ...none,
        header: libdemo(0x7f00_0001_0000, 0x7f00_0001_4000),
        pages: [{ address: 0x7f00_0001_3000, pattern: { counter: { mul: 7, add: 3 } } }],
        fileRuns: [{ start: 0x7f00_0001_0000, pages: 3 }],
      },
      {
        ...none,
        header: {
          start: 0x7ffd_0000_0000, end: 0x7ffd_0000_2000, prot: Prot.Read | Prot.Exec, flags: VmaFlag.NoContents,
          pgoff: 0, kind: VmaKind.Vdso, dev: '00:00', inode: 0, path: '[vdso]', vmFlags: 'rd ex mr mw me de sd',
          reason: '', sharedKey: '',
        },
      },
    ],
  },
  {
    name: 'incremental-snapshot',
    description: 'Incremental child of full-snapshot, pre-copy, in a consistency group: one dirtied data page, parent runs for the rest, a file run, and a [vsyscall] header at 0xffffffffff600000 (above 2^53).',
    snapshotId: '0f1e2d3c4b5a69788796a5b4c3d2e1f0',
    begin: begin({
      parentId: Buffer.from(FULL_ID, 'hex'), groupId: Buffer.from('a5'.repeat(16), 'hex'),
      mode: SnapshotMode.Incremental, consistency: Consistency.PreCopy, startTimeMs: 1_700_000_060_000,
    }),
    vmas: [
      {
        ...none,
        header: anon(0x7f00_0000_0000, 0x7f00_0000_6000),
        pages: [{ address: 0x7f00_0000_1000, pattern: { counter: { mul: 3, add: 1 } } }],
        zeroRuns: [{ start: 0x7f00_0000_5000, pages: 1 }],
        parentRuns: [{ start: 0x7f00_0000_0000, pages: 1 }, { start: 0x7f00_0000_3000, pages: 2 }],
      },
      {
        ...none,
        header: libdemo(0x7f00_0001_0000, 0x7f00_0001_4000),
        fileRuns: [{ start: 0x7f00_0001_0000, pages: 3 }],
        parentRuns: [{ start: 0x7f00_0001_3000, pages: 1 }],
      },
      {
        ...none,
        header: {
          start: 0xffff_ffff_ff60_0000, end: 0xffff_ffff_ff60_1000, prot: Prot.Exec, flags: VmaFlag.NoContents,
          pgoff: 0, kind: VmaKind.Vsyscall, dev: '00:00', inode: 0, path: '[vsyscall]', vmFlags: 'ex',
          reason: '', sharedKey: '',
        },
      },
    ],
  },
  {
    name: 'aborted-stream',
    description: 'A snapshot aborted while reading its second VMA: the pages added to that VMA are never sent, and the stream ends with an abort frame instead of snapshot-end.',
    snapshotId: 'deadbeef00000000000000000000abcd',
    begin: begin({ consistency: Consistency.Live, cmdline: 'sleep\x00600' }),
    vmas: [
      {
        ...none,
        header: anon(0x5555_5555_0000, 0x5555_5555_2000),
        pages: [{ address: 0x5555_5555_1000, pattern: { fill: 0x01 } }],
        zeroRuns: [{ start: 0x5555_5555_0000, pages: 1 }],
      },
    ],
    abort: {
      vma: {
        ...none,
        header: { ...anon(0x7fff_f000_0000, 0x7fff_f002_1000), kind: VmaKind.Stack, path: '[stack]' },
        pages: [{ address: 0x7fff_f002_0000, pattern: { fill: 0xee } }],
      },
      code: 'PV_PROCESS_EXITED',
      message: 'process 4242 exited while VMA 1 (0x7ffff0000000-0x7ffff0021000) was read — 読み取り中に終了',
    },
  },
  {
    name: 'small-frames',
    description: 'Max frame 12356 bytes = 3 pages of 4096 per chunk: 8 data pages give chunks of 3, 3 and 2; a second VMA gives chunks of 3 and 1 and 800 one-page zero runs split over two frames (769 runs fit in one).',
    snapshotId: '5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a',
    maxFrameBytes: 36 + 8 + 3 * (8 + 4096),
    begin: begin({ pid: 1, cmdline: '/sbin/init', host: 'small' }),
    vmas: [
      {
        ...none,
        header: { ...anon(0x0040_0000, 0x0041_0000), kind: VmaKind.Heap, path: '[heap]' },
        pages: Array.from({ length: 8 }, (_, i) => ({
          address: 0x0040_0000 + i * 2 * 4096,
          pattern: { counter: { mul: 1, add: i } },
        })),
      },
      {
        ...none,
        header: anon(0x1000_0000, 0x1000_0000 + 1604 * 4096),
        pages: Array.from({ length: 4 }, (_, i) => ({
          address: 0x1000_0000 + (1600 + i) * 4096,
          pattern: { fill: 0x10 + i },
        })),
        zeroRuns: Array.from({ length: 800 }, (_, i) => ({ start: 0x1000_0000 + i * 2 * 4096, pages: 1 })),
      },
    ],
  },
];

/** Builds one vector: its bytes and the JSON a reader must decode from them. */
export function buildVector(c: VectorCase): { bin: Buffer; json: string } {
  const frames: Buffer[] = [];
  const w = new SnapshotWriter({
    snapshotId: Buffer.from(c.snapshotId, 'hex'),
    emit: (f) => frames.push(f),
    ...(c.maxFrameBytes ? { maxFrameBytes: c.maxFrameBytes } : {}),
  });
  const ps = c.begin.pageSize;
  const write = (v: VectorVma): void => {
    w.beginVma(v.header);
    for (const p of v.pages) w.addPages([p.address], patternBytes(p.pattern, ps));
    for (const r of v.zeroRuns) w.addZero(r.start, r.pages);
    for (const r of v.fileRuns) w.addFile(r.start, r.pages);
    for (const r of v.parentRuns) w.addParent(r.start, r.pages);
  };
  w.begin(c.begin);
  for (const v of c.vmas) {
    write(v);
    w.endVma();
  }
  let end;
  if (c.abort) {
    write(c.abort.vma);
    w.abort(c.abort.code, c.abort.message);
  } else {
    end = w.end();
  }
  const bin = Buffer.concat(frames);
  let offset = 0;
  const expected = {
    name: c.name,
    description: c.description,
    snapshotId: c.snapshotId,
    maxFrameBytes: c.maxFrameBytes ?? null,
    bytes: bin.length,
    sha256: createHash('sha256').update(bin).digest('hex'),
    begin: beginJson(c.begin),
    vmas: [...c.vmas, ...(c.abort ? [{ ...c.abort.vma, pages: [], open: true }] : [])].map((v, index) => vmaJson(v, index, ps)),
    end: end ? { ...end, digest: Buffer.from(end.digest).toString('hex') } : null,
    abort: c.abort ? { code: c.abort.code, message: c.abort.message } : null,
    frames: frames.map((f, sequence) => {
      const row = { sequence, offset, type: FrameType[f[5]!], length: f.length - 36, crc32c: f.readUInt32LE(32).toString(16).padStart(8, '0') };
      offset += f.length;
      return row;
    }),
  };
  return { bin, json: JSON.stringify(expected, null, 1) + '\n' };
}

export const hexAddr = (n: number): string => '0x' + n.toString(16);

export function beginJson(b: SnapshotBegin): Record<string, unknown> {
  return {
    pageSize: b.pageSize, pid: b.pid, startTimeMs: b.startTimeMs, mode: b.mode, consistency: b.consistency,
    tenant: b.tenant, host: b.host, cmdline: b.cmdline,
    parentId: b.parentId ? Buffer.from(b.parentId).toString('hex') : null,
    groupId: b.groupId ? Buffer.from(b.groupId).toString('hex') : null,
  };
}

function vmaJson(v: VectorVma & { open?: boolean }, index: number, ps: number): Record<string, unknown> {
  const runs = (rs: PageRun[]) => rs.map((r) => ({ start: hexAddr(r.start), pages: r.pages }));
  return {
    ...vmaHeaderJson({ ...v.header, index }),
    ...(v.open ? { open: true } : {}),
    pages: v.pages.map((p) => ({
      address: hexAddr(p.address),
      pattern: p.pattern,
      sha256: createHash('sha256').update(patternBytes(p.pattern, ps)).digest('hex'),
    })),
    zeroRuns: runs(v.zeroRuns),
    fileRuns: runs(v.fileRuns),
    parentRuns: runs(v.parentRuns),
  };
}

export function vmaHeaderJson(v: VmaHeader): Record<string, unknown> {
  return {
    index: v.index, start: hexAddr(v.start), end: hexAddr(v.end), prot: v.prot, flags: v.flags,
    pgoff: hexAddr(v.pgoff), kind: v.kind, dev: v.dev, inode: v.inode, path: v.path, vmFlags: v.vmFlags,
    reason: v.reason, sharedKey: v.sharedKey,
  };
}
