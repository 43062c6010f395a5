import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  Consistency,
  FrameType,
  SnapshotMode,
  SnapshotWriter,
  VmaKind,
  decodeFrame,
  newSnapshotId,
  type PageRun,
} from '@pagevault/format';
import { HashCursor, PageHashTableBuilder } from '../dirty/page-hash-table';
import { SoftDirtyMap } from '../dirty/soft-dirty-map';
import { libc } from '../memory/libc';
import { RemoteReader } from '../memory/remote-reader';
import { HI_EXCLUSIVE, HI_PRESENT, HI_SOFT_DIRTY } from '../pagemap/pagemap-bits';
import type { PagemapReader } from '../pagemap/pagemap-reader';
import { classifyVma } from '../procfs/classify';
import { emptyStats } from './options';
import { PageBatch } from './page-batch';
import type { Session } from './session';
import { captureVma } from './vma-capture';

const sha = (b: Buffer): Buffer => createHash('sha256').update(b).digest();

/** Eight page-aligned pages of this very process (page i filled with i + 1), the target of the capture. */
function region(): { buf: Buffer; start: number; ps: number } {
  const c = libc()!;
  const ps = c.pageSize;
  const raw = Buffer.allocUnsafeSlow(9 * ps);
  const skip = (ps - (c.addressOf(raw) % ps)) % ps;
  const buf = raw.subarray(skip, skip + 8 * ps);
  for (let i = 0; i < 8; i++) buf.fill(i + 1, i * ps, (i + 1) * ps);
  return { buf, start: c.addressOf(raw) + skip, ps };
}

/** A pagemap in which every page is present and exclusive, and the pages in `dirty` are soft-dirty. */
function fakePagemap(start: number, ps: number, dirty: Set<number>): PagemapReader {
  const words = new Uint32Array(64);
  return {
    maxEntries: 32,
    words,
    read(addr: number, count: number) {
      for (let k = 0; k < count; k++) {
        const page = (addr - start) / ps + k;
        words[2 * k + 1] = HI_PRESENT | HI_EXCLUSIVE | (dirty.has(page) ? HI_SOFT_DIRTY : 0);
      }
      return 0; // the entries from words[0], read afresh
    },
    close: () => undefined,
  } as unknown as PagemapReader;
}

describe('captureVma in soft-dirty mode (driven by a synthetic pagemap: this kernel has no soft-dirty bits)', () => {
  it('sends dirty pages, and clean pages the parent holds as same-as-parent without reading them', async () => {
    const { buf, start, ps } = region();
    const dirty = new Set([2, 6]);
    const pagemap = fakePagemap(start, ps, dirty);
    const parent = new PageHashTableBuilder(process.pid, ps);
    for (let i = 0; i < 6; i++) parent.add(start + i * ps, sha(Buffer.alloc(ps, 0xee))); // stale hashes: must not matter
    const table = parent.build(true);
    const e = {
      start,
      end: start + 8 * ps,
      perms: 'rw-p',
      offset: 0,
      dev: '00:00',
      inode: 0,
      path: '',
      vmFlags: 'rd wr mr mw me',
    };
    const frames: Buffer[] = [];
    const writer = new SnapshotWriter({ snapshotId: newSnapshotId(), emit: (f) => frames.push(f) });
    writer.begin({
      pageSize: ps,
      pid: process.pid,
      startTimeMs: 0,
      parentId: newSnapshotId(),
      mode: SnapshotMode.Incremental,
      consistency: Consistency.Live,
      tenant: 't',
      host: 'h',
      cmdline: '',
    });
    const reader = new RemoteReader(process.pid, ps, 4);
    const s: Session = {
      pid: process.pid,
      pageSize: ps,
      writer,
      drain: undefined,
      signal: undefined,
      stats: emptyStats(process.pid),
      reader,
      pagemap,
      mode: 'soft-dirty',
      parent: new HashCursor(table),
      softDirty: SoftDirtyMap.scan(pagemap, [e], ps),
      readHashes: new PageHashTableBuilder(process.pid, ps),
      carriedHashes: new PageHashTableBuilder(process.pid, ps),
    };
    await captureVma(s, new PageBatch(s), 0, e, classifyVma(e));
    reader.close();

    const data: number[] = [];
    const parentRuns: PageRun[] = [];
    for (const raw of frames) {
      const b = decodeFrame(raw).body;
      if (b.type === FrameType.VmaBegin) expect(b.vma.kind).toBe(VmaKind.PrivateAnon);
      if (b.type === FrameType.PageChunk) {
        b.addresses.forEach((a, i) => {
          data.push((a - start) / ps);
          expect(
            b.data
              .subarray(i * ps, (i + 1) * ps)
              .equals(buf.subarray(((a - start) / ps) * ps, ((a - start) / ps + 1) * ps)),
          ).toBe(true);
        });
      }
      if (b.type === FrameType.ParentRuns) parentRuns.push(...b.runs);
    }
    expect(data).toEqual([2, 6, 7]); // dirty, dirty, clean but unknown to the parent
    expect(parentRuns).toEqual([
      { start, pages: 2 },
      { start: start + 3 * ps, pages: 3 },
    ]);
    expect(s.stats).toMatchObject({ dataPages: 3, parentPages: 5, pagesScanned: 8 });
    expect(reader.bytesRead).toBe(3 * ps);
    expect([...s.carriedHashes!.build().addresses].map((a) => (a - start) / ps)).toEqual([0, 1, 3, 4, 5]);
    expect(s.readHashes!.build().hashAt(0)).toEqual(sha(buf.subarray(2 * ps, 3 * ps)));
  });
});
