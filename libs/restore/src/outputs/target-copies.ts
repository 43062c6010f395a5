import { HI_FILE_SHARED, HI_SWAPPED, holdsPage, type PagemapReader } from '@pagevault/capture';
import type { PageRun } from '@pagevault/format';

/**
 * The pages of one VMA a snapshot accounted for (data, zero and file runs), as runs: memory grows with
 * the runs, not with the VMA (a reservation of gigabytes costs nothing). gaps() gives the rest: the pages
 * the process had never touched when it was captured.
 */
export class AccountedRuns {
  private readonly accounted: PageRun[] = [];

  constructor(private readonly pageSize: number) {}

  add(start: number, pages = 1): void {
    const last = this.accounted[this.accounted.length - 1];
    if (last && last.start + last.pages * this.pageSize === start) last.pages += pages;
    else this.accounted.push({ start, pages });
  }

  addAll(addresses: ArrayLike<number>): void {
    for (let i = 0; i < addresses.length; i++) this.add(addresses[i]!);
  }

  /** The runs accounted for, ascending (adjacent ones added out of order may stay apart). */
  runs(): PageRun[] {
    return this.accounted.sort((a, b) => a.start - b.start);
  }

  /** The runs of [start, end) not accounted for, ascending. */
  gaps(start: number, end: number): PageRun[] {
    const ps = this.pageSize;
    const out: PageRun[] = [];
    let at = start;
    for (const r of this.runs()) {
      if (r.start > at) out.push({ start: at, pages: (r.start - at) / ps });
      at = Math.max(at, r.start + r.pages * ps);
    }
    if (end > at) out.push({ start: at, pages: (end - at) / ps });
    return out;
  }
}

/**
 * The pages of `runs` the target holds a copy of its own, from its pagemap: present or swapped. With
 * `privateOnly` (a private file mapping) a present page of the file itself is left out: it reads as the
 * file's bytes already, and writing it would only turn page cache into an anonymous copy.
 */
export function targetCopies(pm: PagemapReader, runs: PageRun[], pageSize: number, privateOnly: boolean): PageRun[] {
  const out: PageRun[] = [];
  for (const r of runs) {
    for (let done = 0; done < r.pages; ) {
      const n = Math.min(pm.maxEntries, r.pages - done);
      const base = r.start + done * pageSize;
      pm.read(base, n);
      const hi = pm.words;
      for (let k = 0; k < n; k++) {
        const flags = hi[2 * k + 1]!;
        if (!holdsPage(flags)) continue; // untouched, or a guard page (any access faults)
        if (privateOnly && (flags & HI_FILE_SHARED) !== 0 && (flags & HI_SWAPPED) === 0) continue;
        const addr = base + k * pageSize;
        const last = out[out.length - 1];
        if (last && last.start + last.pages * pageSize === addr) last.pages++;
        else out.push({ start: addr, pages: 1 });
      }
      done += n;
    }
  }
  return out;
}
