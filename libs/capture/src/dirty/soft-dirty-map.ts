import type { PagemapReader } from '../pagemap/pagemap-reader';
import { HI_SOFT_DIRTY } from '../pagemap/pagemap-bits';

/**
 * Which pages were soft-dirty when a capture started, one bit per page of each VMA. It exists because the
 * bits must be saved before clear_refs and cleared before the pages are read: clearing after the read
 * would lose a write that lands between a page's read and the clear (in live and pre-copy rounds).
 * Memory: one bit per page of address space mapped, 32 KiB per GiB.
 */
export class SoftDirtyMap {
  private constructor(private readonly bits: Uint8Array[]) {}

  /** Scans the pagemap of every VMA (one pread per window). */
  static scan(
    pm: PagemapReader,
    vmas: readonly { start: number; end: number }[],
    pageSize: number,
  ): SoftDirtyMap {
    const bits = vmas.map((v) => {
      const pages = (v.end - v.start) / pageSize;
      const out = new Uint8Array(Math.ceil(pages / 8));
      for (let base = 0; base < pages; base += pm.maxEntries) {
        const n = Math.min(pm.maxEntries, pages - base);
        pm.read(v.start + base * pageSize, n);
        markSoftDirty(pm.words, n, out, base);
      }
      return out;
    });
    return new SoftDirtyMap(bits);
  }

  /** Whether page `page` of VMA `vma` (indexes as given to scan) was soft-dirty. */
  isDirty(vma: number, page: number): boolean {
    const b = this.bits[vma];
    return b !== undefined && (b[page >> 3] & (1 << (page & 7))) !== 0;
  }
}

/** Sets bit (base + k) of `out` for each of the n pagemap entries in `words` whose soft-dirty bit is set. */
export function markSoftDirty(words: Uint32Array, n: number, out: Uint8Array, base: number): void {
  for (let k = 0; k < n; k++) {
    if (words[2 * k + 1] & HI_SOFT_DIRTY) {
      const p = base + k;
      out[p >> 3] |= 1 << (p & 7);
    }
  }
}
