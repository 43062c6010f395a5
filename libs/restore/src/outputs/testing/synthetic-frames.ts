import {
  Consistency, SnapshotMode, SnapshotWriter, VmaKind, decodeFrame, newSnapshotId, type Frame, type SnapshotBegin, type VmaHeader,
} from '@pagevault/format';

/** A VMA of a synthetic snapshot; page lists are page indexes within the VMA, ascending. */
export interface SyntheticVma extends Partial<Omit<VmaHeader, 'index' | 'start' | 'end'>> {
  start: number;
  pages: number;
  data?: number[];
  zero?: number[];
  file?: number[];
}

export interface SyntheticSnapshot {
  pageSize?: number;
  pid?: number;
  cmdline?: string;
  /** Default 'synthetic' (never this host, so mapped files are not compared with their dev and inode). */
  host?: string;
  vmas: SyntheticVma[];
  maxFrameBytes?: number;
}

/** Deterministic contents of the data page at `addr`: each 8-byte word holds its own address, xor a salt. */
export function pageContent(addr: number, pageSize = 4096, salt = 0): Buffer {
  const b = Buffer.alloc(pageSize);
  const hi = Math.floor(addr / 0x1_0000_0000);
  const lo = addr % 0x1_0000_0000;
  for (let o = 0; o < pageSize; o += 8) {
    b.writeUInt32LE(((lo + o) ^ salt) >>> 0, o);
    b.writeUInt32LE(hi, o + 4);
  }
  return b;
}

/**
 * Builds a full snapshot stream with SnapshotWriter and yields its decoded frames lazily, so a large
 * synthetic snapshot never sits in memory whole.
 */
export async function* syntheticFrames(s: SyntheticSnapshot, salt = 0): AsyncGenerator<Frame> {
  const ps = s.pageSize ?? 4096;
  const out: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: newSnapshotId(), emit: (f) => out.push(f), maxFrameBytes: s.maxFrameBytes });
  const drain = function* (): Generator<Frame> {
    for (const f of out.splice(0)) yield decodeFrame(f, s.maxFrameBytes);
  };
  const begin: SnapshotBegin = {
    pageSize: ps, pid: s.pid ?? 4242, startTimeMs: 1_700_000_000_000, mode: SnapshotMode.Full, consistency: Consistency.Frozen,
    tenant: 't', host: s.host ?? 'synthetic', cmdline: s.cmdline ?? '/usr/bin/synthetic\0--flag\0',
  };
  w.begin(begin);
  for (const v of s.vmas) {
    const { start, pages, data = [], zero = [], file = [], ...rest } = v;
    w.beginVma({
      start, end: start + pages * ps, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '00:00', inode: 0,
      path: '', vmFlags: 'rd wr mr mw me ac', reason: '', sharedKey: '', ...rest,
    });
    const batch = 64;
    for (let i = 0; i < data.length; i += batch) {
      const idx = data.slice(i, i + batch);
      const addrs = idx.map((k) => start + k * ps);
      w.addPages(addrs, Buffer.concat(addrs.map((a) => pageContent(a, ps, salt))));
      yield* drain();
    }
    for (const k of zero) w.addZero(start + k * ps, 1);
    for (const k of file) w.addFile(start + k * ps, 1);
    w.endVma();
    yield* drain();
  }
  w.end();
  yield* drain();
}

/** Collects an async iterable (for tests that need the frames twice). */
export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export async function* replay<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}
