import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { forEachLimited } from '@pagevault/objstore';
import { basename, isHashNamed, keys, namedByHash } from './keys';
import type { Manifest } from './manifest';
import { blobsOf, checkPlainBlob, readPackTrailer, type PackEntry } from './pack';
import { nodeObjectIntact } from './node-pack';
import { PageFetcher } from './page-fetcher';
import { PageKind } from './page-list';
import { walkPageMaps } from './page-map';
import type { TenantStore } from './tenant-store';

export interface StoreCheck {
  /** Packs and node packs read whole, and their bytes. */
  objects: number;
  bytes: number;
  /** Distinct data pages the snapshots reach, each checked once against its hash. */
  pages: number;
  /**
   * Damage in named objects, each a PvError naming its key: a pack or node pack whose bytes do not hash
   * to its name, a pack trailer that does not parse, a blob that does not inflate to the hashes its
   * pack's trailer lists.
   */
  damaged: PvError[];
  /**
   * Something a snapshot reaches is missing or unchecked — a page in no index, in a damaged pack or where
   * its index entry does not point; a page-map node that does not load or decode — so which snapshots it
   * breaks must be found by reading them one by one. False: every page of every snapshot given is intact.
   */
  incomplete: boolean;
}

/** Delta pages fetched (and checked) per PageFetcher call. */
const DELTA_BATCH = 4096;

/**
 * restic's `check --read-data` for a whole tenant, reading each pack once, however many snapshots share
 * its pages (reading each snapshot's pages back would read a page once per snapshot that has it):
 *   1. the snapshots' page maps are walked, each node once, and every data page they reach is looked up
 *      in the index (one byte per index entry marks it needed);
 *   2. every pack and node pack is read whole and hashed against its name; every plain blob of a pack is
 *      inflated and each of its pages hashed against the trailer, and the index entries pointing at a
 *      checked page are marked verified;
 *   3. the needed pages in delta blobs (whose check needs their bases from elsewhere) are fetched and
 *      checked through the restore path's fetcher.
 * A needed page left unverified makes the check `incomplete`. Memory: two bytes per index entry, one
 * string per map node, four packs read at a time.
 */
export async function checkStore(t: TenantStore, manifests: readonly Manifest[], onProgress?: (done: number, total: number) => void): Promise<StoreCheck> {
  const idx = t.index;
  const pageSize = t.pageSize;
  const needed = new Uint8Array(idx.size);
  const verified = new Uint8Array(idx.size);
  const out: StoreCheck = { objects: 0, bytes: 0, pages: 0, damaged: [], incomplete: false };

  // 1. The page maps, each node once.
  const roots = manifests.flatMap((m) => m.vmas.flatMap((v) => (v.map ? [v.map] : [])));
  const run = (_first: number, pages: number, kind: PageKind, b: Buffer, h: number) => {
    if (kind !== PageKind.Data) return;
    for (let i = 0; i < pages; i++) {
      const r = idx.locate(b, h + i * 32);
      if (r < 0) out.incomplete = true;
      else needed[r] = 1;
    }
  };
  await walkPageMaps(roots, 8, t.loadNode, run, (e) => {
    if (!isFinding(e)) throw e;
    out.incomplete = true;
  });

  // 2. Every named object whole.
  const named: string[] = [];
  for (const prefix of [keys.packs(t.tenant), keys.mapNodes(t.tenant)]) {
    for await (const o of t.store.list(prefix)) if (isHashNamed(o.key)) named.push(o.key);
  }
  const deltas: Buffer[] = [];
  const deltaRecs: number[] = [];
  const checkPack = (pack: Buffer, key: string): void => {
    const name = basename(key);
    // The index entry a trailer entry is, if the index points at it (a duplicate elsewhere is not).
    const at = (e: PackEntry) => {
      const r = idx.locate(e.hash);
      return r >= 0 && idx.packOf(r) === name && idx.blobOffsetOf(r) === e.blobOffset && idx.slotOf(r) === e.slot ? r : -1;
    };
    for (const blob of blobsOf(readPackTrailer(pack, key))) {
      if (blob[0]!.depth > 0) {
        for (const e of blob) {
          const r = at(e);
          if (r < 0 || !needed[r]) continue;
          deltas.push(e.hash);
          deltaRecs.push(r);
        }
        continue;
      }
      const damage = checkPlainBlob(pack, key, blob, pageSize);
      if (damage) out.damaged.push(damage);
      else {
        for (const e of blob) {
          const r = at(e);
          if (r >= 0) verified[r] = 1;
        }
      }
    }
  };
  await forEachLimited(named, 4, async (key) => {
    let b: Buffer;
    try {
      b = await t.store.get(key);
    } catch (e) {
      if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) return; // deleted (a prune) since the listing
      throw e;
    }
    out.bytes += b.length;
    const isPack = key.startsWith(keys.packs(t.tenant));
    if (isPack ? !namedByHash(b, key) : !nodeObjectIntact(b, key)) {
      out.damaged.push(new PvError(ErrorCodes.OBJECT_CORRUPT, `${key}: its bytes do not hash to its name (damaged in the store)`, { details: { key } }));
    } else if (isPack) {
      try {
        checkPack(b, key);
      } catch (e) {
        if (!isFinding(e)) throw e;
        out.damaged.push(e as PvError);
      }
    }
    onProgress?.(++out.objects, named.length);
  });

  // 3. Delta pages, with their bases, through the restore path (which checks every page it returns).
  if (deltas.length > 0) {
    const fetcher = new PageFetcher(t, pageSize, { cacheBytes: 32 << 20 });
    const page = Buffer.allocUnsafe(Math.min(deltas.length, DELTA_BATCH) * pageSize);
    for (let i = 0; i < deltas.length; i += DELTA_BATCH) {
      const n = Math.min(DELTA_BATCH, deltas.length - i);
      const batch = Buffer.concat(deltas.slice(i, i + n));
      try {
        await fetcher.fetch(batch, Int32Array.from({ length: n }, (_, k) => k * 32), n, page, (k) => `page ${batch.toString('hex', k * 32, k * 32 + 32)}`);
        for (let k = 0; k < n; k++) verified[deltaRecs[i + k]!] = 1;
      } catch (e) {
        if (!isFinding(e)) throw e;
        out.incomplete = true;
      }
    }
  }

  // The fetcher rebuilds the index when a pack it needs is gone: the marks then no longer line up.
  if (t.index !== idx) out.incomplete = true;
  for (let r = 0; r < needed.length; r++) {
    if (!needed[r]) continue;
    out.pages++;
    if (!verified[r]) out.incomplete = true;
  }
  return out;
}

/** Damage or absence in the store, as opposed to the store failing to answer (retriable, or no PvError). */
function isFinding(e: unknown): boolean {
  return isPvError(e) && !e.retriable && (e.code === ErrorCodes.OBJECT_CORRUPT || e.code === ErrorCodes.OBJECT_NOT_FOUND || e.code === ErrorCodes.PAGE_HASH_MISMATCH);
}
