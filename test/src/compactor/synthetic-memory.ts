import { createHash, randomBytes } from 'node:crypto';
import {
  Consistency, SnapshotMode, SnapshotWriter, VmaKind, idToHex, newSnapshotId,
} from '@pagevault/format';

/**
 * The memory of a made-up process, written as a snapshot stream with the real SnapshotWriter. It stands in
 * for a capture: the compactor cannot tell the difference, and the stream is known byte for byte.
 */
export interface SyntheticVma {
  start: number;
  /** Contents of the VMA's data pages, back to back from `start`. */
  data: Buffer;
  /** Pages after the data pages that are sent as a zero run. */
  zeroPages?: number;
}

export interface SyntheticProcess {
  tenant: string;
  host: string;
  pid: number;
  cmdline: string;
  startTimeMs: number;
  pageSize: number;
  vmas: SyntheticVma[];
}

export interface SyntheticSnapshot {
  id: string;
  snapshotId: Uint8Array;
  /** Every frame, in order: exactly what a reader of the log sees. */
  frames: Buffer[];
  /** The frames concatenated: what a restore of the snapshot must give back, byte for byte. */
  stream: Buffer;
  dataPages: number;
}

export const PAGE = 4096;

export function randomPages(n: number): Buffer {
  return randomBytes(n * PAGE);
}

/** n pages cycling through `patterns` distinct contents (each page of one pattern is the same bytes). */
export function repeatedPages(n: number, patterns: number, seed = randomBytes(8).toString('hex')): Buffer {
  const b = Buffer.alloc(n * PAGE);
  for (let i = 0; i < n; i++) b.fill(`pattern ${i % patterns} of ${seed} `, i * PAGE, (i + 1) * PAGE);
  return b;
}

/** A process with one VMA of random pages, one of repeated pages, and a zero run after each. */
export function syntheticProcess(p: Partial<SyntheticProcess> & { tenant: string; randomPages: number; repeatedPages: number; patterns: number }): SyntheticProcess {
  const base = 0x7f00_0000_0000;
  return {
    tenant: p.tenant,
    host: p.host ?? 'host-a',
    pid: p.pid ?? 4242,
    cmdline: p.cmdline ?? 'synthetic\0--memory\0',
    startTimeMs: p.startTimeMs ?? 1_700_000_000_000,
    pageSize: PAGE,
    vmas: p.vmas ?? [
      { start: base, data: randomPages(p.randomPages), zeroPages: 32 },
      { start: base + 0x1000_0000, data: repeatedPages(p.repeatedPages, p.patterns), zeroPages: 16 },
    ],
  };
}

/** The same memory, moved to other addresses, in another process on another host. */
export function relocated(p: SyntheticProcess, other: Partial<Pick<SyntheticProcess, 'tenant' | 'host' | 'pid'>>, shift = 0x1_0000_0000): SyntheticProcess {
  return { ...p, ...other, vmas: p.vmas.map((v) => ({ ...v, start: v.start + shift })) };
}

/** A copy in which the data pages `pages` (indexes into the first VMA) have new random contents. */
export function withChangedPages(p: SyntheticProcess, pages: number[]): SyntheticProcess {
  const [first, ...rest] = p.vmas;
  const data = Buffer.from(first!.data);
  for (const i of pages) randomBytes(PAGE).copy(data, i * PAGE);
  return { ...p, vmas: [{ ...first!, data }, ...rest] };
}

/** The same process with 8 bytes of each listed page of its first VMA changed (an edit, not a rewrite). */
export function withEditedPages(p: SyntheticProcess, pages: number[]): SyntheticProcess {
  const [first, ...rest] = p.vmas;
  const data = Buffer.from(first!.data);
  for (const i of pages) randomBytes(8).copy(data, i * PAGE + ((i * 136) % (PAGE - 8)));
  return { ...p, vmas: [{ ...first!, data }, ...rest] };
}

export interface WriteOptions {
  snapshotId?: Uint8Array;
  /** Writes an incremental snapshot: pages equal to the parent's at the same address go as parent runs. */
  parent?: { snapshotId: Uint8Array; memory: SyntheticProcess };
}

/** Writes the process as one snapshot stream, in the canonical order every writer uses. */
export function writeSnapshot(p: SyntheticProcess, o: WriteOptions = {}): SyntheticSnapshot {
  const snapshotId = o.snapshotId ?? newSnapshotId();
  const frames: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId, emit: (f) => frames.push(f) });
  writeMemory(w, p, o);
  return { id: idToHex(snapshotId), snapshotId, frames, stream: Buffer.concat(frames), dataPages: w.counts.dataPages };
}

/** Drives a writer through the whole snapshot (what a capture does with the writer it is given). */
export function writeMemory(w: SnapshotWriter, p: SyntheticProcess, o: Pick<WriteOptions, 'parent'> = {}): void {
  w.begin({
    pageSize: p.pageSize, pid: p.pid, startTimeMs: p.startTimeMs, mode: o.parent ? SnapshotMode.Incremental : SnapshotMode.Full,
    consistency: Consistency.Frozen, tenant: p.tenant, host: p.host, cmdline: p.cmdline,
    ...(o.parent ? { parentId: o.parent.snapshotId } : {}),
  });
  const ps = p.pageSize;
  p.vmas.forEach((v, vi) => {
    const n = v.data.length / ps;
    const end = v.start + (n + (v.zeroPages ?? 0)) * ps;
    w.beginVma({ start: v.start, end, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '00:00', inode: 0, path: '', vmFlags: 'rd wr mr mw me ac', reason: '', sharedKey: '' });
    const before = o.parent?.memory.vmas[vi];
    for (let i = 0; i < n; i++) {
      const a = v.start + i * ps;
      if (before && before.start === v.start && v.data.compare(before.data, i * ps, (i + 1) * ps, i * ps, (i + 1) * ps) === 0) w.addParent(a, 1);
      else w.addPages([a], v.data, i * ps, 1);
    }
    if (v.zeroPages) w.addZero(v.start + n * ps, v.zeroPages);
    w.endVma();
  });
  w.end();
}

/** Distinct data page contents of the process: what a tenant that has never seen it must store. */
export function distinctPages(p: SyntheticProcess): number {
  const seen = new Set<string>();
  for (const v of p.vmas) {
    for (let o = 0; o < v.data.length; o += p.pageSize) seen.add(createHash('sha256').update(v.data.subarray(o, o + p.pageSize)).digest('hex'));
  }
  return seen.size;
}
