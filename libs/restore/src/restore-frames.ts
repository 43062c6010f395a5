import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import {
  Consistency, DEFAULT_MAX_FRAME_BYTES, SnapshotMode, SnapshotWriter, decodeFrame, idFromHex, type Frame, type PageRun,
  type SnapshotBegin, type VmaHeader,
} from '@pagevault/format';
import {
  PageFetcher, PageKind, readPageMap, type FetchOptions, type Manifest, type ManifestVma, type PageList, type TenantStore,
} from '@pagevault/repo';
import { lookahead } from './lookahead';
import type { EndInfo, SnapshotSource, SnapshotVisitor } from './outputs/snapshot-walk';

export interface RestoreOptions extends FetchOptions {
  maxFrameBytes?: number;
  /**
   * Data pages fetched per batch (default 2048 = 8 MiB of 4 KiB pages). Two batches are in memory: the
   * one being emitted and the next one being fetched, so restore memory is bounded by 2 × batchPages pages
   * plus the fetcher's cache, whatever the snapshot size.
   */
  batchPages?: number;
  onProgress?(pagesDone: number, pagesTotal: number): void;
}

const CONSISTENCY = { frozen: Consistency.Frozen, live: Consistency.Live, precopy: Consistency.PreCopy } as const;

/**
 * What the emitting side sees, in order: each VMA (its header as in the stream, without an index, and its
 * zero and file runs), then its fetched data batches.
 */
type Step =
  | { vma: Omit<VmaHeader, 'index'>; zero: PageRun[]; file: PageRun[] }
  | { addrs: Float64Array; buf: Buffer; n: number };

/**
 * A stored snapshot as a SnapshotSource: iterate it for the canonical frames (restoreFrames), or let an
 * output visit it directly — the same pages, fetched and verified the same way, without encoding them
 * into frames and decoding them again (raw images, ELF cores and live restores take that path).
 */
export function restoreSnapshot(t: TenantStore, m: Manifest, opts: RestoreOptions = {}): SnapshotSource {
  return {
    [Symbol.asyncIterator]: () => restoreFrames(t, m, opts),
    visit: (visitor) => visitStored(t, m, opts, visitor),
  };
}

function beginOf(m: Manifest): SnapshotBegin {
  return {
    pageSize: m.pageSize, pid: m.pid, startTimeMs: m.startTimeMs, mode: SnapshotMode.Full,
    consistency: CONSISTENCY[m.consistency], tenant: m.tenant, host: m.host, cmdline: m.cmdline,
    ...(m.groupId ? { groupId: idFromHex(m.groupId) } : {}),
  };
}

/** The runs of one kind in address order, adjacent ones merged (as SnapshotWriter merges them). */
function runsOf(list: PageList, order: Int32Array, kind: PageKind): PageRun[] {
  const runs: PageRun[] = [];
  for (const i of order) {
    if (list.kinds[i] !== kind) continue;
    const start = list.starts[i]!;
    const pages = list.counts[i]!;
    const last = runs[runs.length - 1];
    if (last && last.start + last.pages * list.pageSize === start) last.pages += pages;
    else runs.push({ start, pages });
  }
  return runs;
}

async function visitStored(t: TenantStore, m: Manifest, opts: RestoreOptions, visitor: SnapshotVisitor): Promise<EndInfo> {
  const ps = m.pageSize;
  await visitor.begin?.(beginOf(m), idFromHex(m.snapshotId));
  const end = { vmaCount: 0, dataPages: 0, zeroPages: 0, filePages: 0, parentPages: 0 };
  let open: { v: VmaHeader; zero: PageRun[]; file: PageRun[] } | undefined;
  const close = async () => {
    if (!open) return;
    const { v, zero, file } = open;
    open = undefined;
    if (zero.length > 0) await visitor.zeroRuns?.(v, zero);
    if (file.length > 0) await visitor.fileRuns?.(v, file);
    for (const r of zero) end.zeroPages += r.pages;
    for (const r of file) end.filePages += r.pages;
    await visitor.vmaEnd?.(v);
  };
  for await (const s of lookahead(steps(t, m, opts))) {
    if ('vma' in s) {
      await close();
      open = { v: { ...s.vma, index: end.vmaCount++ }, zero: s.zero, file: s.file };
      await visitor.vmaBegin?.(open.v);
    } else {
      await visitor.pages?.(open!.v, s.addrs, s.buf.subarray(0, s.n * ps));
      end.dataPages += s.n;
      opts.onProgress?.(end.dataPages, m.counts.dataPages);
    }
  }
  await close();
  await visitor.end?.(end);
  return end;
}

/**
 * Reassembles a stored snapshot as the canonical FULL stream (docs/format.md): the same frames, byte for
 * byte, that a direct dump of the same memory writes. Pages are fetched in batches with coalesced ranged
 * GETs and each is verified against its hash before it is emitted; the next batch is fetched while the
 * consumer writes the current one, so reads and writes overlap.
 */
export async function* restoreFrames(t: TenantStore, m: Manifest, opts: RestoreOptions = {}): AsyncGenerator<Frame> {
  const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  let pending: Buffer[] = [];
  const writer = new SnapshotWriter({ snapshotId: idFromHex(m.snapshotId), emit: (f) => pending.push(f), maxFrameBytes });
  const drain = function* (): Generator<Frame> {
    const out = pending;
    pending = [];
    for (const f of out) yield decodeFrame(f, maxFrameBytes, { sealedHere: true });
  };
  writer.begin(beginOf(m));
  yield* drain();
  const total = m.counts.dataPages;
  let done = 0;
  let inVma = false;
  for await (const s of lookahead(steps(t, m, opts))) {
    if ('vma' in s) {
      if (inVma) writer.endVma();
      yield* drain();
      writer.beginVma(s.vma);
      inVma = true;
      // Runs are emitted at the VMA's end, after its pages, whenever they are added (canonical order).
      for (const r of s.zero) writer.addZero(r.start, r.pages);
      for (const r of s.file) writer.addFile(r.start, r.pages);
    } else {
      writer.addPages(s.addrs, s.buf, 0, s.n);
      done += s.n;
      opts.onProgress?.(done, total);
    }
    yield* drain();
  }
  if (inVma) writer.endVma();
  writer.end();
  yield* drain();
}

/**
 * The VMAs and their data pages in address order, fetched batchPages at a time into two alternating
 * buffers: a batch's buffer is reused two steps later, after the consumer has copied it (lookahead 1).
 */
async function* steps(t: TenantStore, m: Manifest, opts: RestoreOptions): AsyncGenerator<Step> {
  const ps = m.pageSize;
  const B = opts.batchPages ?? 2048;
  const fetcher = new PageFetcher(t, ps, opts);
  const sets = [0, 1].map(() => ({ addrs: new Float64Array(B), hashAt: new Int32Array(B), buf: Buffer.allocUnsafe(B * ps) }));
  let turn = 0;
  for (const v of m.vmas) {
    const list = v.map ? await readPageMap(v.map, ps, t.loadNode) : undefined;
    const order = list ? list.order(`snapshot ${m.snapshotId} VMA ${v.index}`) : new Int32Array(0);
    if (list) checkInside(list, order, v, m.snapshotId);
    const { map: _map, pages: _pages, index: _index, ...header } = v;
    yield { vma: header, zero: list ? runsOf(list, order, PageKind.Zero) : [], file: list ? runsOf(list, order, PageKind.File) : [] };
    if (!list) continue;
    const where = (addrs: Float64Array) => (i: number) => `snapshot ${m.snapshotId} VMA ${v.index} page ${hex(addrs[i]!)}`;
    let set = sets[turn]!;
    let n = 0;
    const flush = async () => {
      await fetcher.fetch(list.hashes, set.hashAt, n, set.buf, where(set.addrs));
      const step = { addrs: set.addrs.subarray(0, n), buf: set.buf, n };
      turn ^= 1;
      set = sets[turn]!;
      n = 0;
      return step;
    };
    for (const i of order) {
      if (list.kinds[i] !== PageKind.Data) continue;
      const start = list.starts[i]!;
      const count = list.counts[i]!;
      for (let k = 0; k < count; k++) {
        set.addrs[n] = start + k * ps;
        set.hashAt[n] = list.hashAt[i]! + k * 32;
        if (++n === B) yield await flush();
      }
    }
    if (n > 0) yield await flush();
  }
}

/** Every run of a VMA's page map lies inside the VMA (a frame walk's validator checks the same). */
function checkInside(list: PageList, order: Int32Array, v: ManifestVma, snapshotId: string): void {
  if (order.length === 0) return;
  const first = list.starts[order[0]!]!;
  const last = order[order.length - 1]!;
  const end = list.starts[last]! + list.counts[last]! * list.pageSize;
  if (first < v.start || end > v.end) {
    throw new PvError(
      ErrorCodes.STREAM_ADDRESS,
      `snapshot ${snapshotId} VMA ${v.index} ${hex(v.start)}-${hex(v.end)}: its page map covers ${hex(first)}-${hex(end)}`,
      { details: { snapshot: snapshotId, vma: v.index } },
    );
  }
}
