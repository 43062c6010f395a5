import { hex } from '@pagevault/errors';
import {
  Consistency, DEFAULT_MAX_FRAME_BYTES, SnapshotMode, SnapshotWriter, decodeFrame, idFromHex, type Frame,
} from '@pagevault/format';
import { PageFetcher, PageKind, readPageMap, type FetchOptions, type Manifest, type TenantStore } from '@pagevault/repo';

export interface RestoreOptions extends FetchOptions {
  maxFrameBytes?: number;
  /** Data pages fetched per batch (default 2048 = 8 MiB of 4 KiB pages): bounds restore memory. */
  batchPages?: number;
  onProgress?(pagesDone: number, pagesTotal: number): void;
}

const CONSISTENCY = { frozen: Consistency.Frozen, live: Consistency.Live, precopy: Consistency.PreCopy } as const;

/**
 * Reassembles a stored snapshot as the canonical FULL stream (docs/format.md): the same frames, byte for
 * byte, that a direct dump of the same memory writes. Pages are fetched in batches with coalesced ranged
 * GETs and each is verified against its hash before it is emitted.
 */
export async function* restoreFrames(t: TenantStore, m: Manifest, opts: RestoreOptions = {}): AsyncGenerator<Frame> {
  const ps = m.pageSize;
  const B = opts.batchPages ?? 2048;
  const maxFrameBytes = opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  const fetcher = new PageFetcher(t, ps, opts);
  let pending: Buffer[] = [];
  const writer = new SnapshotWriter({ snapshotId: idFromHex(m.snapshotId), emit: (f) => pending.push(f), maxFrameBytes });
  const drain = function* (): Generator<Frame> {
    const out = pending;
    pending = [];
    for (const f of out) yield decodeFrame(f, maxFrameBytes);
  };
  writer.begin({
    pageSize: ps, pid: m.pid, startTimeMs: m.startTimeMs, mode: SnapshotMode.Full,
    consistency: CONSISTENCY[m.consistency], tenant: m.tenant, host: m.host, cmdline: m.cmdline,
    ...(m.groupId ? { groupId: idFromHex(m.groupId) } : {}),
  });
  yield* drain();
  const total = m.counts.dataPages;
  let done = 0;
  const addrs = new Float64Array(B);
  const hashAt = new Int32Array(B);
  const buf = Buffer.allocUnsafe(B * ps);
  for (const v of m.vmas) {
    const { map, pages: _pages, index: _index, ...header } = v;
    writer.beginVma(header);
    if (map) {
      const list = await readPageMap(map, ps, t.loadNode);
      const order = list.order(`snapshot ${m.snapshotId} VMA ${v.index}`);
      let n = 0;
      const flush = async () => {
        if (n === 0) return;
        await fetcher.fetch(list.hashes, hashAt, n, buf, (i) => `snapshot ${m.snapshotId} VMA ${v.index} page ${hex(addrs[i]!)}`);
        writer.addPages(addrs, buf, 0, n);
        done += n;
        n = 0;
        opts.onProgress?.(done, total);
      };
      for (const i of order) {
        const kind = list.kinds[i];
        const start = list.starts[i]!;
        const count = list.counts[i]!;
        if (kind === PageKind.Zero) writer.addZero(start, count);
        else if (kind === PageKind.File) writer.addFile(start, count);
        else {
          for (let k = 0; k < count; k++) {
            addrs[n] = start + k * ps;
            hashAt[n] = list.hashAt[i]! + k * 32;
            if (++n === B) {
              await flush();
              yield* drain();
            }
          }
        }
      }
      await flush();
    }
    writer.endVma();
    yield* drain();
  }
  writer.end();
  yield* drain();
}
