import type { PageRun, VmaHeader } from '@pagevault/format';

/**
 * Tracks which pages of one VMA the stream accounted for (data, zero or file), to find the untouched rest:
 * the pages a process never faulted in. In a file-backed VMA those read as the file's bytes, which
 * `fillUntouchedFromFile` writes instead of leaving holes. Memory: one bit per page of the VMA.
 */
export class UntouchedPages {
  private readonly seen: Uint8Array;

  constructor(
    private readonly vma: VmaHeader,
    private readonly pageSize: number,
  ) {
    this.seen = new Uint8Array(Math.ceil((vma.end - vma.start) / pageSize / 8));
  }

  mark(addr: number, pages = 1): void {
    const first = (addr - this.vma.start) / this.pageSize;
    for (let i = first; i < first + pages; i++) this.seen[i >> 3]! |= 1 << (i & 7);
  }

  markAll(addresses: ArrayLike<number>): void {
    for (let i = 0; i < addresses.length; i++) this.mark(addresses[i]!);
  }

  /** The runs of pages never marked, ascending. */
  runs(): PageRun[] {
    const n = (this.vma.end - this.vma.start) / this.pageSize;
    const out: PageRun[] = [];
    for (let i = 0; i < n; i++) {
      if (this.seen[i >> 3]! & (1 << (i & 7))) continue;
      const last = out[out.length - 1];
      const addr = this.vma.start + i * this.pageSize;
      if (last && last.start + last.pages * this.pageSize === addr) last.pages++;
      else out.push({ start: addr, pages: 1 });
    }
    return out;
  }
}
