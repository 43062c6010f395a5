import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { pageHasher } from '@pagevault/hashing';
import { missingIndexHint } from './index-file';
import { keys } from './keys';
import { DICT_PAD, deltaHeader, inflateBlobInto } from './pack';
import { BlobRing } from './blob-ring';
import type { PageIndex } from './page-index';
import type { TenantStore } from './tenant-store';

export interface FetchOptions {
  /** Ranged GETs in flight at once (default 4). */
  maxInFlight?: number;
  /** Blobs closer than this in one pack are fetched by one GET (default 256 KiB). */
  gapBytes?: number;
  /** Largest single ranged GET (default 8 MiB). */
  maxRangeBytes?: number;
  /** Inflated blobs kept between calls (default 64 MiB): bounds the cache, whatever the snapshot size. */
  cacheBytes?: number;
}

/** The bases of a range's delta blobs, fetched: the blob at offset o has its bases at pages[first.get(o)…]. */
interface RangeBases {
  pages: Buffer;
  first: Map<number, number>;
}

/** A range's delta blobs (blob offsets in the pack and their base counts), with their bases counted. */
interface DeltaBlobs {
  found: { offset: number; bases: number }[];
  total: number;
  deepest: number;
}

/** Deeper than any delta chain: what a top-level fetch accepts. */
const ANY_DEPTH = 256;

/** A ranged GET: misses[from, to) (sorted by blob) are pages of blobs in [start, end) of one pack. */
interface Range {
  pack: string;
  start: number;
  end: number;
  from: number;
  to: number;
}

/**
 * Reads pages by hash from a tenant's packs: groups them by pack, coalesces neighbouring blobs into
 * ranged GETs (several in flight), inflates each blob once, and verifies every page against its hash.
 * The blobs a GET brings are inflated back to back into a region of the blob ring (the cache) and all
 * their pages hashed in one PageHasher call (every core); placing a page then compares its slot's hash
 * with the one asked for, so a page that repeats (a constant page, a block shared by many addresses) is
 * hashed once per inflated copy, and an index pointing a hash at the wrong slot still fails. Per page
 * only typed-array entries: no location or want object, no string.
 * A delta blob (pack.ts) is inflated with its bases' pages, fetched first by the same code one level
 * down; each level accepts only blobs shallower than the one that needs them, so a chain ends.
 * Memory: the blob ring (cacheBytes) plus a read buffer (maxRangeBytes) per GET in flight.
 */
export class PageFetcher {
  private readonly o: Required<FetchOptions>;
  private readonly ring: BlobRing;
  /** Packs by number, for the cache's numeric keys (pack number × 2^32 + blob offset). */
  private readonly packNo = new Map<string, number>();
  /** A ranged GET's bytes land here, one buffer per GET in flight. */
  private readonly readBufs: Buffer[] = [];
  private fetching = 0;
  /** Buffers for the base pages of delta blobs (takeSpare). */
  private readonly spares: Buffer[] = [];
  /** A delta blob's zstd dictionary: DICT_PAD zero bytes, then its bases' pages. */
  private dict: Buffer | undefined;
  readonly stats = { requests: 0, bytesFetched: 0, pages: 0, pagesVerified: 0, deltaBlobs: 0 };

  constructor(
    private readonly t: TenantStore,
    private readonly pageSize: number,
    opts: FetchOptions = {},
  ) {
    this.o = { maxInFlight: 4, gapBytes: 256 << 10, maxRangeBytes: 8 << 20, cacheBytes: 64 << 20, ...opts };
    this.ring = new BlobRing(pageSize, this.o.cacheBytes);
  }

  /** Fills out[i * pageSize ...] with the page whose hash is hashes[hashAt[i] ...], for i < n. */
  async fetch(hashes: Buffer, hashAt: ArrayLike<number>, n: number, out: Buffer, where: (i: number) => string): Promise<void> {
    const index = this.t.index;
    try {
      await this.fetchOnce(hashes, hashAt, n, out, where, ANY_DEPTH);
    } catch (e) {
      // A prune since this process loaded the tenant's index may have moved pages out of a pack and
      // deleted it: rebuild the index once from the index files now stored (unless a fetch beside this
      // one already did), and try again.
      const key = isPvError(e, ErrorCodes.OBJECT_NOT_FOUND) ? e.details['key'] : undefined;
      if (typeof key !== 'string' || !key.startsWith(keys.packs(this.t.tenant))) throw e;
      await this.t.rebuildIndexSince(index);
      await this.fetchOnce(hashes, hashAt, n, out, where, ANY_DEPTH);
    }
  }

  /** `below`: every blob read must be shallower (the bases of a delta blob of depth d are above d). */
  private async fetchOnce(hashes: Buffer, hashAt: ArrayLike<number>, n: number, out: Buffer, where: (i: number) => string, below: number): Promise<void> {
    // Per page: its index record, its blob's cache key, and the pages no cached blob holds.
    const recs = new Int32Array(n);
    const blobKey = new Float64Array(n);
    const misses = new Int32Array(n);
    const ring = this.ring;
    // Another compactor may have stored pages since this process loaded the tenant's index: one refresh.
    let refreshed = false;
    let m = 0;
    let lastPack = '';
    let lastOffset = -1;
    let key = -1;
    let hit = -1;
    // Record numbers are the index's: every one this call uses is of this index (a fetch beside this one
    // may rebuild the tenant's, see fetch).
    const index = this.t.index;
    for (let i = 0; i < n; i++) {
      const h = hashAt[i]!;
      let r = index.locate(hashes, h);
      if (r < 0 && !refreshed) {
        await this.t.refreshIndex();
        refreshed = true;
        if (this.t.index !== index) return this.fetchOnce(hashes, hashAt, n, out, where, below); // rebuilt meanwhile: start over on it
        r = index.locate(hashes, h);
      }
      if (r < 0) {
        const page = hashes.subarray(h, h + 32).toString('hex');
        throw new PvError(ErrorCodes.OBJECT_NOT_FOUND, `${where(i)}: page ${page} is in no index file of tenant ${this.t.tenant}${missingIndexHint(this.t.damagedIndexes)}`, { details: { page } });
      }
      recs[i] = r;
      // Neighbouring pages mostly share a blob: key it and look the cache up once per blob, not per page
      // (pack names are the index's interned strings: comparing them is comparing references).
      const pack = index.packOf(r);
      const offset = index.blobOffsetOf(r);
      if (pack !== lastPack || offset !== lastOffset) {
        lastPack = pack;
        lastOffset = offset;
        key = this.keyOf(pack, offset);
        hit = ring.get(key);
      }
      if (hit >= 0) this.place(index, ring.raw, ring.hashes, hit + index.slotOf(r), r, i, hashes, h, out, where);
      else {
        blobKey[i] = key;
        misses[m++] = i;
      }
    }
    // The misses by pack and blob offset, then coalesced into ranged GETs.
    const sorted = misses.subarray(0, m).sort((a, b) => blobKey[a]! - blobKey[b]! || a - b);
    const ranges: Range[] = [];
    let cur: Range | undefined;
    for (let k = 0; k < m; k++) {
      const r = recs[sorted[k]!]!;
      const pack = index.packOf(r);
      const s = index.blobOffsetOf(r);
      const e = s + index.blobLengthOf(r);
      if (cur && cur.pack === pack && s - cur.end <= this.o.gapBytes && e - cur.start <= this.o.maxRangeBytes) {
        cur.end = Math.max(cur.end, e);
        cur.to = k + 1;
      } else ranges.push((cur = { pack, start: s, end: e, from: k, to: k + 1 }));
    }
    let next = 0;
    // Once one GET fails the others take no new range; all are waited for before this call settles, so a
    // retry never shares a read buffer, the ring or `out` with a worker of this one still running.
    let failed = false;
    const worker = async (w: number) => {
      while (!failed && next < ranges.length) {
        const r = ranges[next++]!;
        const key = keys.pack(this.t.tenant, r.pack);
        // Each worker reads into a buffer of its own, kept by the fetcher: no fresh MiBs per GET (a
        // second call running beside this one gets fresh buffers).
        const into = reuse ? (this.readBufs[w] ??= Buffer.allocUnsafeSlow(this.o.maxRangeBytes)) : undefined;
        const bytes = await this.t.store.getRange(key, r.start, r.end - r.start, into);
        if (failed) return; // another GET failed meanwhile: this call is over
        this.stats.requests++;
        this.stats.bytesFetched += bytes.length;
        const d = this.deltasIn(index, key, bytes, r, recs, sorted, below);
        if (d) {
          // It waits: off the worker's buffer, which the next GET overwrites.
          const own = into && bytes.buffer === into.buffer ? Buffer.from(bytes) : bytes;
          waiting.push({ key, bytes: own, range: r, ...d });
        } else this.inflate(index, key, bytes, r, recs, sorted, hashes, hashAt, out, where, undefined);
      }
    };
    // Ranges with delta blobs wait until every GET is in; then the bases of all of them are fetched by one
    // call a level down (neighbouring bases share its GETs), and they are inflated.
    const waiting: ({ key: string; bytes: Buffer; range: Range } & DeltaBlobs)[] = [];
    const reuse = this.fetching++ === 0;
    try {
      const settled = await Promise.allSettled(Array.from({ length: Math.min(this.o.maxInFlight, ranges.length) }, (_, w) => worker(w).catch((e: unknown) => ((failed = true), Promise.reject(e)))));
      for (const x of settled) if (x.status === 'rejected') throw x.reason;
      if (waiting.length > 0) {
        for (const x of waiting) this.stats.deltaBlobs += x.found.length;
        const total = waiting.reduce((t, x) => t + x.total, 0);
        const deepest = waiting.reduce((d, x) => Math.max(d, x.deepest), 0);
        const baseHashes = Buffer.allocUnsafe(total * 32);
        const firsts: Map<number, number>[] = [];
        let b = 0;
        for (const x of waiting) {
          const first = new Map<number, number>();
          for (const f of x.found) {
            first.set(f.offset, b);
            const at = f.offset - x.range.start + 8; // the header's base hashes
            b += x.bytes.copy(baseHashes, b * 32, at, at + f.bases * 32) / 32;
          }
          firsts.push(first);
        }
        // Which blob named base i (only for an error: a base no index has may be a damaged header's bytes).
        const namedIn = (i: number): string => {
          let end = 0;
          for (const x of waiting) for (const f of x.found) if (i < (end += f.bases)) return `the delta blob at offset ${f.offset} of pack ${x.key}`;
          return 'a delta blob';
        };
        const pages = this.takeSpare(total * this.pageSize);
        try {
          const at = Int32Array.from({ length: total }, (_, i) => i * 32);
          await this.fetchOnce(baseHashes, at, total, pages, (i) => `base ${baseHashes.toString('hex', i * 32, i * 32 + 32)} of ${namedIn(i)} (a damaged pack names bases no index has: \`pagevault verify\` reads every pack against its name)`, deepest);
          waiting.forEach((x, i) => this.inflate(index, x.key, x.bytes, x.range, recs, sorted, hashes, hashAt, out, where, { pages, first: firsts[i]! }));
        } finally {
          this.giveSpare(pages);
        }
      }
    } finally {
      this.fetching--;
    }
    this.stats.pages += n;
  }

  /**
   * A buffer for a level's base pages, kept between calls: fresh memory costs a page fault on first touch
   * per 4 KiB (~10 µs on this VM, more than the page's copy).
   */
  private takeSpare(bytes: number): Buffer {
    const i = this.spares.findIndex((b) => b.length >= bytes);
    return i >= 0 ? this.spares.splice(i, 1)[0]!.subarray(0, bytes) : Buffer.allocUnsafeSlow(bytes);
  }

  private giveSpare(b: Buffer): void {
    const whole = Buffer.from(b.buffer, b.byteOffset, b.buffer.byteLength - b.byteOffset);
    if (this.spares.length < 4) this.spares.push(whole);
  }

  private keyOf(pack: string, blobOffset: number): number {
    let p = this.packNo.get(pack);
    if (p === undefined) this.packNo.set(pack, (p = this.packNo.size));
    return p * 2 ** 32 + blobOffset;
  }

  /** The delta blobs among a range's blobs, checked to be shallower than `below`; undefined if none. */
  private deltasIn(index: PageIndex, key: string, bytes: Buffer, range: Range, recs: Int32Array, sorted: Int32Array, below: number): DeltaBlobs | undefined {
    let total = 0;
    let deepest = 0;
    let lastOffset = -1;
    const found: DeltaBlobs['found'] = [];
    for (let k = range.from; k < range.to; k++) {
      const r = recs[sorted[k]!]!;
      const offset = index.blobOffsetOf(r);
      if (offset === lastOffset) continue;
      lastOffset = offset;
      const z = bytes.subarray(offset - range.start, offset - range.start + index.blobLengthOf(r));
      const where = `pack ${key} blob @${offset}`;
      const h = deltaHeader(z, where);
      if (!h) continue;
      if (h.depth >= below) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `${where}: delta blob of depth ${h.depth} is the base of a blob no deeper than it`, { details: { key } });
      found.push({ offset, bases: h.bases });
      total += h.bases;
      if (h.depth > deepest) deepest = h.depth;
    }
    if (found.length === 0) return undefined;
    return { found, total, deepest };
  }

  /**
   * Inflates the blobs a range's pages lie in (each once) back to back into a region of the ring, hashes
   * all their pages in one call, caches them, and places the pages. The range's misses are sorted by
   * blob, so a blob's pages are neighbours.
   */
  private inflate(index: PageIndex, key: string, bytes: Buffer, range: Range, recs: Int32Array, sorted: Int32Array, hashes: Buffer, hashAt: ArrayLike<number>, out: Buffer, where: (i: number) => string, bases: RangeBases | undefined): void {
    const ps = this.pageSize;
    let pages = 0;
    let lastOffset = -1;
    for (let k = range.from; k < range.to; k++) {
      const r = recs[sorted[k]!]!;
      if (index.blobOffsetOf(r) !== lastOffset) pages += index.blobPagesOf(r);
      lastOffset = index.blobOffsetOf(r);
    }
    const region = this.ring.region(pages);
    let p = -1;
    lastOffset = -1;
    for (let k = range.from; k < range.to; k++) {
      const r = recs[sorted[k]!]!;
      const offset = index.blobOffsetOf(r);
      if (offset === lastOffset) continue;
      p = p < 0 ? 0 : p + index.blobPagesOf(recs[sorted[k - 1]!]!);
      const z = bytes.subarray(offset - range.start, offset - range.start + index.blobLengthOf(r));
      const first = bases?.first.get(offset);
      let dict: Buffer | undefined;
      if (first !== undefined) {
        const nb = z[5]!; // checked by deltaHeader in deltasIn
        dict = this.dict ??= Buffer.alloc(DICT_PAD + 16 * ps);
        if (dict.length < DICT_PAD + nb * ps) dict = this.dict = Buffer.alloc(DICT_PAD + nb * ps);
        bases!.pages.copy(dict, DICT_PAD, first * ps, (first + nb) * ps);
        dict = dict.subarray(0, DICT_PAD + nb * ps);
      }
      inflateBlobInto(z, region.raw.subarray(p * ps, (p + index.blobPagesOf(r)) * ps), `pack ${key} blob @${offset}`, dict);
      lastOffset = offset;
    }
    pageHasher().hash(region.raw, pages, ps, region.hashes);
    this.stats.pagesVerified += pages;
    // Cache each blob (when the region is in the ring) and place its pages.
    p = -1;
    lastOffset = -1;
    for (let k = range.from; k < range.to; k++) {
      const i = sorted[k]!;
      const r = recs[i]!;
      const offset = index.blobOffsetOf(r);
      if (offset !== lastOffset) {
        p = p < 0 ? 0 : p + index.blobPagesOf(recs[sorted[k - 1]!]!);
        if (region.inRing) this.ring.keep(this.keyOf(range.pack, offset), region.first + p, index.blobPagesOf(r));
        lastOffset = offset;
      }
      this.place(index, region.raw, region.hashes, p + index.slotOf(r), r, i, hashes, hashAt[i]!, out, where);
    }
  }

  /** Copies page `at` of raw (whose SHA-256 is at hashesOf[32 at]) to out[i], if it is the page asked for. */
  private place(index: PageIndex, raw: Buffer, sums: Buffer, at: number, r: number, i: number, hashes: Buffer, h: number, out: Buffer, where: (i: number) => string): void {
    const ps = this.pageSize;
    if (sums.compare(hashes, h, h + 32, at * 32, at * 32 + 32) !== 0) {
      const pack = index.packOf(r);
      throw new PvError(ErrorCodes.PAGE_HASH_MISMATCH, `${where(i)}: page content does not match its hash ${hashes.subarray(h, h + 32).toString('hex')} (pack ${pack})`, { details: { pack } });
    }
    raw.copy(out, i * ps, at * ps, (at + 1) * ps);
  }
}
