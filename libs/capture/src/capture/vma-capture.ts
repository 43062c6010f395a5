import { VmaFlag, VmaKind } from '@pagevault/format';
import { hex } from '@pagevault/errors';
import { shmemExtents } from '../memory/shmem-extents';
import { HI_EXCLUSIVE, HI_FILE_SHARED, HI_PRESENT, holdsPage } from '../pagemap/pagemap-bits';
import type { VmaClass } from '../procfs/classify';
import type { MapsEntry } from '../procfs/maps';
import { addSkipped } from './options';
import { aborted, PageBatch } from './page-batch';
import type { Session } from './session';

/**
 * Captures one VMA (its pagemap read ahead up to `through`: see readaheadEnds): its header, then its pages by the page rules, then its end.
 *  - never touched (neither present nor swapped): skipped — unless a shmem object holds data there;
 *  - present, still the file's page-cache page (bit 61) in a private mapping of a reopenable file: file run;
 *  - clean in soft-dirty mode and held by the parent: same-as-parent run, not read;
 *  - everything else present or swapped: read, then data, zero or (hash mode) same-as-parent.
 */
export async function captureVma(
  s: Session,
  batch: PageBatch,
  index: number,
  e: MapsEntry,
  c: VmaClass,
  twins?: MapsEntry[],
  through = 0,
): Promise<void> {
  const { writer, stats, pageSize: ps } = s;
  writer.beginVma({
    start: e.start,
    end: e.end,
    prot: c.prot,
    flags: c.flags,
    pgoff: e.offset,
    kind: c.kind,
    dev: e.dev,
    inode: e.inode,
    path: e.path,
    vmFlags: e.vmFlags,
    reason: c.reason,
    sharedKey: c.sharedKey,
  });
  const pages = (e.end - e.start) / ps;
  if (c.flags & (VmaFlag.NoContents | VmaFlag.SharedElsewhere)) {
    const why =
      c.flags & VmaFlag.SharedElsewhere
        ? 'shared-elsewhere'
        : c.reason || `special ${e.path || hex(e.start)}`;
    addSkipped(stats, why, pages);
    writer.endVma();
    return;
  }
  // Pages of the shmem object another process wrote are not in our page table (see shmemExtents).
  const extents = c.kind === VmaKind.SharedAnon ? shmemExtents(s.pid, e, ps) : undefined;
  let ext = 0;
  // Pages present in the VMAs that map the same range of the same shared file (dumped under this one).
  const viaTwins = twins?.length ? presentIn(s, twins, pages) : undefined;
  batch.forceProcMem = c.forceRead;
  const { softDirty, parent, carriedHashes } = s;
  const softDirtyMode = s.mode === 'soft-dirty' && softDirty && parent && carriedHashes;
  const shared = (c.flags & VmaFlag.Shared) !== 0;
  const pm = s.pagemap;
  const words = pm.words;
  for (let base = 0; base < pages; base += pm.maxEntries) {
    if (s.signal?.aborted) throw aborted(s.pid, s.signal);
    const count = Math.min(pm.maxEntries, pages - base);
    const winAddr = e.start + base * ps;
    const b = pm.read(winAddr, count, through);
    stats.pagesScanned += count;
    // The VMA's last window: tell the writer how many data pages can still come (present or swapped, plus
    // those batched), so its last chunk is laid out for them and not copied again at the end. Only for a
    // snapshot without a parent: an incremental drops most of these as same-as-parent, and a chunk laid
    // out for them would be fresh memory for a few pages.
    if (base + count >= pages && extents === undefined && viaTwins === undefined && !parent) {
      let upTo = batch.n;
      for (let k = 0; k < count; k++) if (holdsPage(words[2 * (b + k) + 1])) upTo++;
      writer.expectPages(upTo);
    }
    for (let k = 0; k < count; k++) {
      const hi = words[2 * (b + k) + 1];
      const page = base + k;
      const addr = winAddr + k * ps;
      if (!holdsPage(hi) && !viaTwins?.[page]) {
        if (extents === undefined) {
          stats.skippedUntouched++;
          continue;
        }
        while (ext < extents.length && extents[ext + 1] <= page) ext += 2;
        if (!(ext < extents.length && extents[ext] <= page)) {
          stats.skippedUntouched++;
          continue;
        }
      } else if (c.fileRuns && hi & HI_PRESENT && hi & HI_FILE_SHARED) {
        writer.addFile(addr, 1);
        stats.filePages++;
        continue;
      }
      if (softDirtyMode && !softDirty.isDirty(index, page)) {
        const j = parent.find(addr);
        if (j >= 0) {
          writer.addParent(addr, 1);
          stats.parentPages++;
          carriedHashes.add(addr, parent.table.hashes, j * parent.table.hashBytes);
          continue;
        }
      }
      // Private pages not mapped exclusively are shared copy-on-write (or KSM): read without unsharing.
      batch.push(addr, !shared && (hi & HI_EXCLUSIVE) === 0);
      if (batch.full) await batch.flush();
    }
  }
  await batch.flush();
  writer.endVma();
}

/** Which pages of the range the `twins` map (same object, same offsets) are present or swapped there. */
function presentIn(s: Session, twins: MapsEntry[], pages: number): Uint8Array {
  // Read before this VMA's own windows, through the session's reader: no file of its own.
  const out = new Uint8Array(pages);
  const pm = s.pagemap;
  for (const t of twins) {
    for (let base = 0; base < pages; base += pm.maxEntries) {
      const count = Math.min(pm.maxEntries, pages - base);
      pm.read(t.start + base * s.pageSize, count);
      for (let k = 0; k < count; k++) if (holdsPage(pm.words[2 * k + 1])) out[base + k] = 1;
    }
  }
  return out;
}
