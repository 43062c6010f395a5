import { hash as sha256 } from 'node:crypto';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { keys } from './keys';
import { inflateBlob } from './pack';
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

/**
 * Reads pages by hash from a tenant's packs: groups them by pack, coalesces neighbouring blobs into
 * ranged GETs (several in flight), inflates each blob once, and verifies every page against its hash.
 */
export class PageFetcher {
  private readonly o: Required<FetchOptions>;
  private cache = new Map<string, Buffer>();
  private cached = 0;
  readonly stats = { requests: 0, bytesFetched: 0, pages: 0 };

  constructor(
    private readonly t: TenantStore,
    private readonly pageSize: number,
    opts: FetchOptions = {},
  ) {
    this.o = { maxInFlight: 4, gapBytes: 256 << 10, maxRangeBytes: 8 << 20, cacheBytes: 64 << 20, ...opts };
  }

  /** Fills out[i * pageSize ...] with the page whose hash is hashes[hashAt[i] ...], for i < n. */
  async fetch(hashes: Buffer, hashAt: ArrayLike<number>, n: number, out: Buffer, where: (i: number) => string): Promise<void> {
    const ps = this.pageSize;
    const byPack = new Map<string, Want[]>();
    // Another compactor may have stored pages since this process loaded the tenant's index: one refresh.
    for (let i = 0; i < n; i++) {
      if (!this.t.index.has(hashes, hashAt[i]!)) {
        await this.t.refreshIndex();
        break;
      }
    }
    for (let i = 0; i < n; i++) {
      const h = hashAt[i]!;
      const loc = this.t.index.get(hashes, h);
      if (!loc) {
        throw new PvError(ErrorCodes.OBJECT_NOT_FOUND, `${where(i)}: page ${hashes.subarray(h, h + 32).toString('hex')} is in no pack of tenant ${this.t.tenant}`, { details: { page: hashes.subarray(h, h + 32).toString('hex') } });
      }
      const blob = this.cache.get(`${loc.pack}:${loc.blobOffset}`);
      if (blob) this.place(blob, loc, i, hashes, h, out, where);
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
        const inflated = new Map<number, Buffer>();
        for (const w of r.wants) {
          let raw = inflated.get(w.loc.blobOffset);
          if (!raw) {
            const z = bytes.subarray(w.loc.blobOffset - r.start, w.loc.blobOffset - r.start + w.loc.blobLength);
            raw = inflateBlob(z, w.loc.blobPages, ps, `pack ${key} blob @${w.loc.blobOffset}`);
            inflated.set(w.loc.blobOffset, raw);
            this.remember(`${r.pack}:${w.loc.blobOffset}`, raw);
          }
          this.place(raw, w.loc, w.i, hashes, hashAt[w.i]!, out, where);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.maxInFlight, ranges.length) }, worker));
    this.stats.pages += n;
  }

  private place(raw: Buffer, loc: PageLocation, i: number, hashes: Buffer, h: number, out: Buffer, where: (i: number) => string): void {
    const ps = this.pageSize;
    const page = raw.subarray(loc.slot * ps, (loc.slot + 1) * ps);
    const got = sha256('sha256', page, 'buffer') as unknown as Buffer;
    if (got.compare(hashes, h, h + 32) !== 0) {
      throw new PvError(ErrorCodes.PAGE_HASH_MISMATCH, `${where(i)}: page content does not match its hash ${hashes.subarray(h, h + 32).toString('hex')} (pack ${loc.pack})`, { details: { pack: loc.pack } });
    }
    page.copy(out, i * ps);
  }

  private remember(key: string, raw: Buffer): void {
    this.cache.set(key, raw);
    this.cached += raw.length;
    for (const [k, v] of this.cache) {
      if (this.cached <= this.o.cacheBytes) break;
      this.cache.delete(k);
      this.cached -= v.length;
    }
  }
}
