// Shared by the repository's specs only (excluded from the build).
import { Consistency, DEFAULT_MAX_FRAME_BYTES, SnapshotMode, SnapshotWriter, VmaKind, decodeFrame, idFromHex, newSnapshotId, type Frame } from '@pagevault/format';
import { DirectoryObjectStore, type ObjectStore } from '@pagevault/objstore';
import { SnapshotIngest, type IngestOptions } from './ingest';
import type { Manifest } from './manifest';
import { PageFetcher } from './page-fetcher';
import { PageKind } from './page-list';
import { readPageMap } from './page-map';
import type { Repository } from './repository';
import type { TenantStore } from './tenant-store';

export const PS = 4096;
export const BASE = 0x7f00_0000_0000;

export interface Vma {
  start: number;
  data: Buffer;
  zeroPages?: number;
  /** Page ranges [first page, pages) of the VMA (data or zero) sent as "same as parent" (incrementals). */
  sameAsParent?: [number, number][];
}

/**
 * The decoded frames of one snapshot of `vmas`, as SnapshotWriter makes them. With a parent it is an
 * incremental snapshot that still sends every page (its changed pages find their delta bases there).
 */
export function snapshotFrames(pid: number, vmas: Vma[], startTimeMs: number, tenant = 'acme', parent?: string): { id: Uint8Array; frames: Frame[] } {
  const id = newSnapshotId();
  const frames: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: id, emit: (f) => frames.push(f) });
  const mode = parent ? { mode: SnapshotMode.Incremental, parentId: idFromHex(parent) } : { mode: SnapshotMode.Full };
  w.begin({ pageSize: PS, pid, startTimeMs, ...mode, consistency: Consistency.Frozen, tenant, host: 'h1', cmdline: 'repo-test' });
  for (const v of vmas) {
    const n = v.data.length / PS;
    w.beginVma({ start: v.start, end: v.start + (n + (v.zeroPages ?? 0)) * PS, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '00:00', inode: 0, path: '', vmFlags: 'rd wr', reason: '', sharedKey: '' });
    const same = (p: number) => v.sameAsParent?.some(([f, k]) => p >= f && p < f + k) ?? false;
    const sent = Array.from({ length: n }, (_, i) => i).filter((i) => !same(i));
    w.addPages(sent.map((i) => v.start + i * PS), Buffer.concat(sent.map((i) => v.data.subarray(i * PS, (i + 1) * PS))));
    for (let z = n; z < n + (v.zeroPages ?? 0); z++) if (!same(z)) w.addZero(v.start + z * PS, 1);
    for (const [f, k] of v.sameAsParent ?? []) w.addParent(v.start + f * PS, k);
    w.endVma();
  }
  w.end();
  return { id, frames: frames.map((f) => decodeFrame(f, DEFAULT_MAX_FRAME_BYTES)) };
}

/** A snapshot through the real path: SnapshotWriter frames, decoded and fed to SnapshotIngest. */
export async function ingest(repo: Repository, pid: number, vmas: Vma[], startTimeMs: number, tenant = 'acme', parent?: string, opts: IngestOptions = {}): Promise<Manifest> {
  const { id, frames } = snapshotFrames(pid, vmas, startTimeMs, tenant, parent);
  const ing = new SnapshotIngest(repo, id, opts);
  let m: Manifest | undefined;
  for (const f of frames) m = (await ing.accept(f)) ?? m;
  return m!;
}

/** Every data page of each VMA, in address order, fetched and checked against its hash by a PageFetcher. */
export async function readBack(t: TenantStore, m: Manifest): Promise<Buffer[]> {
  const fetcher = new PageFetcher(t, PS);
  const out: Buffer[] = [];
  for (const v of m.vmas) {
    const list = await readPageMap(v.map!, PS, t.loadNode);
    const hashAt: number[] = [];
    for (const i of list.order('read back')) {
      if (list.kinds[i] === PageKind.Data) for (let k = 0; k < list.counts[i]!; k++) hashAt.push(list.hashAt[i]! + k * 32);
    }
    const buf = Buffer.alloc(hashAt.length * PS);
    await fetcher.fetch(list.hashes, hashAt, hashAt.length, buf, (i) => `VMA ${v.index} page ${i}`);
    out.push(buf);
  }
  return out;
}

/** A directory store counting its puts and gets by key family: n['get maps'], n['put index'], … */
export function countingStore(dir: string): { store: ObjectStore; n: Record<string, number> } {
  const s = new DirectoryObjectStore(dir);
  const n: Record<string, number> = {};
  const count = (op: string, key: string) => {
    const k = `${op} ${key.split('/')[2]}`;
    n[k] = (n[k] ?? 0) + 1;
  };
  const store: ObjectStore = Object.assign(Object.create(s) as ObjectStore, {
    put: (k: string, b: Uint8Array, sha?: string) => (count('put', k), s.put(k, b, sha)),
    get: (k: string) => (count('get', k), s.get(k)),
    getRange: (k: string, offset: number, length: number, into?: Buffer) => (count('getRange', k), s.getRange(k, offset, length, into)),
  });
  return { store, n };
}
