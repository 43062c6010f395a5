/**
 * The fetcher's cache of inflated blobs, in one fixed ring of memory evicted oldest first: pages in `raw`,
 * their SHA-256s in `hashes`, a blob found by key as the ring page it starts at. Cached blobs used to be
 * fresh buffers of several MiB a ranged GET: V8 counts such external memory and answered with a full
 * mark-compact every few of them (~50 a GiB restored, ~0.6 s of a 3 s restore). A region is handed out
 * at the ring's head, evicting the oldest entries it overlaps (live entries always sit in allocation
 * order from the oldest onwards, so only the oldest can overlap, and wrapping gives up the tail); a
 * region larger than the ring is a fresh buffer and its blobs are not cached.
 */
export class BlobRing {
  readonly raw: Buffer;
  readonly hashes: Buffer;
  private head = 0;
  /** Cached blobs by key, oldest first: first ring page and pages. */
  private readonly entries = new Map<number, { first: number; pages: number }>();

  constructor(
    private readonly pageSize: number,
    bytes: number,
  ) {
    const pages = Math.max(1, Math.floor(bytes / pageSize));
    this.raw = Buffer.allocUnsafeSlow(pages * pageSize);
    this.hashes = Buffer.allocUnsafeSlow(pages * 32);
  }

  private get capacity(): number {
    return this.hashes.length / 32;
  }

  /** The ring page a cached blob starts at, or -1. */
  get(key: number): number {
    return this.entries.get(key)?.first ?? -1;
  }

  /**
   * Room for `pages` pages and their hashes (page p of the region is ring page first + p), taken from the
   * oldest cached blobs; `inRing` false when it is too large for the ring (then nothing of it is cached).
   */
  region(pages: number): { raw: Buffer; hashes: Buffer; first: number; inRing: boolean } {
    if (pages > this.capacity) {
      return { raw: Buffer.allocUnsafe(pages * this.pageSize), hashes: Buffer.allocUnsafe(pages * 32), first: 0, inRing: false };
    }
    // Wrapping leaves the tail unused: the (oldest) entries there go too.
    let wrappedAt = Infinity;
    if (this.head + pages > this.capacity) {
      wrappedAt = this.head;
      this.head = 0;
    }
    const first = this.head;
    const end = first + pages;
    for (const [k, e] of this.entries) {
      if (e.first < wrappedAt && (e.first >= end || e.first + e.pages <= first)) break;
      this.entries.delete(k);
    }
    this.head = end;
    const ps = this.pageSize;
    return { raw: this.raw.subarray(first * ps, end * ps), hashes: this.hashes.subarray(first * 32, end * 32), first, inRing: true };
  }

  /** Caches the blob at ring pages [first, first + pages) of a region just handed out. */
  keep(key: number, first: number, pages: number): void {
    this.entries.delete(key); // inflated again after its eviction: the newest copy is the one to keep
    this.entries.set(key, { first, pages });
  }
}
