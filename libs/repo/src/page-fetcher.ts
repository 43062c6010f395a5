import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { pageHasher } from '@pagevault/hashing';
import { keys } from './keys';
import { inflateBlobInto } from './pack';
import type { PageLocation } from './page-index';
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

interface Want {
  loc: PageLocation;
  i: number;
}

/** An inflated blob and the SHA-256 of each of its slots, computed once when it was inflated. */
interface Blob {
  raw: Buffer;
  hashes: Buffer;
}

/**
 * Reads pages by hash from a tenant's packs: groups them by pack, coalesces neighbouring blobs into
 * ranged GETs (several in flight), inflates each blob once, and verifies every page against its hash.
 * The blobs a GET brings are inflated back to back into one buffer and all their pages hashed in one
 * PageHasher call (every core); placing a page then compares its slot's hash with the one asked for, so a
 * page that repeats (a constant page, a block shared by many addresses) is hashed once per inflated copy,
 * and an index pointing a hash at the wrong slot still fails.
 * Memory: the blob cache (cacheBytes) plus the blobs of the ranges in flight.
 */
export class PageFetcher {
  private readonly o: Required<FetchOptions>;
  private cache = new Map<string, Blob>();
  private cached = 0;
  readonly stats = { requests: 0, bytesFetched: 0, pages: 0, pagesVerified: 0 };

  constructor(
    private readonly t: TenantStore,
    private readonly pageSize: number,
    opts: FetchOptions = {},
  ) {
    this.o = { maxInFlight: 4, gapBytes: 256 << 10, maxRangeBytes: 8 << 20, cacheBytes: 64 << 20, ...opts };
  }

  /** Fills out[i * pageSize ...] with the page whose hash is hashes[hashAt[i] ...], for i < n. */
  async fetch(hashes: Buffer, hashAt: ArrayLike<number>, n: number, out: Buffer, where: (i: number) => string): Promise<void> {
    try {
      await this.fetchOnce(hashes, hashAt, n, out, where);
    } catch (e) {
      // A prune since this process loaded the tenant's index may have moved pages out of a pack and
      // deleted it: rebuild the index once from the index files now stored, and try again.
      const key = isPvError(e, ErrorCodes.OBJECT_NOT_FOUND) ? e.details['key'] : undefined;
      if (typeof key !== 'string' || !key.startsWith(keys.packs(this.t.tenant))) throw e;
      await this.t.reloadIndex();
      await this.fetchOnce(hashes, hashAt, n, out, where);
    }
  }

  private async fetchOnce(hashes: Buffer, hashAt: ArrayLike<number>, n: number, out: Buffer, where: (i: number) => string): Promise<void> {
    const byPack = new Map<string, Want[]>();
    // Another compactor may have stored pages since this process loaded the tenant's index: one refresh.
    let refreshed = false;
    let last: Blob | undefined;
    let lastPack = '';
    let lastOffset = -1;
    for (let i = 0; i < n; i++) {
      const h = hashAt[i]!;
      let loc = this.t.index.get(hashes, h);
      if (!loc && !refreshed) {
        await this.t.refreshIndex();
        refreshed = true;
        loc = this.t.index.get(hashes, h);
      }
      if (!loc) {
        throw new PvError(ErrorCodes.OBJECT_NOT_FOUND, `${where(i)}: page ${hashes.subarray(h, h + 32).toString('hex')} is in no pack of tenant ${this.t.tenant}`, { details: { page: hashes.subarray(h, h + 32).toString('hex') } });
      }
      // Neighbouring pages mostly share a blob: look the cache up once per blob, not once per page.
      if (loc.pack !== lastPack || loc.blobOffset !== lastOffset) {
        last = this.cache.get(`${loc.pack}:${loc.blobOffset}`);
        lastPack = loc.pack;
        lastOffset = loc.blobOffset;
      }
      if (last) this.place(last, loc, i, hashes, h, out, where);
      else (byPack.get(loc.pack) ?? byPack.set(loc.pack, []).get(loc.pack)!).push({ loc, i });
    }
    const ranges: { pack: string; start: number; end: number; wants: Want[] }[] = [];
    for (const [pack, wants] of byPack) {
      wants.sort((a, b) => a.loc.blobOffset - b.loc.blobOffset);
      let cur: (typeof ranges)[number] | undefined;
      for (const w of wants) {
        const s = w.loc.blobOffset;
        const e = s + w.loc.blobLength;
        if (cur && s - cur.end <= this.o.gapBytes && e - cur.start <= this.o.maxRangeBytes) {
          cur.end = Math.max(cur.end, e);
          cur.wants.push(w);
        } else ranges.push((cur = { pack, start: s, end: e, wants: [w] }));
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < ranges.length) {
        const r = ranges[next++]!;
        const key = keys.pack(this.t.tenant, r.pack);
        const bytes = await this.t.store.getRange(key, r.start, r.end - r.start);
        this.stats.requests++;
        this.stats.bytesFetched += bytes.length;
        const blobs = this.inflate(r.pack, key, bytes, r.start, r.wants);
        for (const w of r.wants) this.place(blobs.get(w.loc.blobOffset)!, w.loc, w.i, hashes, hashAt[w.i]!, out, where);
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.maxInFlight, ranges.length) }, worker));
    this.stats.pages += n;
  }

  /**
   * Inflates the blobs the wants name (each once) back to back, hashes all their pages in one call, caches
   * them. The wants of a range are sorted by blob offset, so a blob's wants are neighbours.
   */
  private inflate(pack: string, key: string, bytes: Buffer, start: number, wants: Want[]): Map<number, Blob> {
    const ps = this.pageSize;
    const distinct: PageLocation[] = [];
    for (const { loc } of wants) if (distinct.at(-1)?.blobOffset !== loc.blobOffset) distinct.push(loc);
    const pages = distinct.reduce((n, loc) => n + loc.blobPages, 0);
    const raw = Buffer.allocUnsafe(pages * ps);
    const sums = Buffer.allocUnsafe(pages * 32);
    const blobs = new Map<number, Blob>();
    let p = 0;
    for (const loc of distinct) {
      const z = bytes.subarray(loc.blobOffset - start, loc.blobOffset - start + loc.blobLength);
      const blob = { raw: raw.subarray(p * ps, (p + loc.blobPages) * ps), hashes: sums.subarray(p * 32, (p + loc.blobPages) * 32) };
      inflateBlobInto(z, blob.raw, `pack ${key} blob @${loc.blobOffset}`);
      blobs.set(loc.blobOffset, blob);
      p += loc.blobPages;
    }
    pageHasher().hash(raw, pages, ps, sums);
    this.stats.pagesVerified += pages;
    for (const [offset, blob] of blobs) this.remember(`${pack}:${offset}`, blob);
    return blobs;
  }

  private place(blob: Blob, loc: PageLocation, i: number, hashes: Buffer, h: number, out: Buffer, where: (i: number) => string): void {
    const ps = this.pageSize;
    const v = loc.slot * 32;
    if (blob.hashes.compare(hashes, h, h + 32, v, v + 32) !== 0) {
      throw new PvError(ErrorCodes.PAGE_HASH_MISMATCH, `${where(i)}: page content does not match its hash ${hashes.subarray(h, h + 32).toString('hex')} (pack ${loc.pack})`, { details: { pack: loc.pack } });
    }
    blob.raw.copy(out, i * ps, loc.slot * ps, (loc.slot + 1) * ps);
  }

  private remember(key: string, blob: Blob): void {
    this.cache.set(key, blob);
    this.cached += blob.raw.length;
    for (const [k, v] of this.cache) {
      if (this.cached <= this.o.cacheBytes) break;
      this.cache.delete(k);
      this.cached -= v.raw.length;
    }
  }
}
