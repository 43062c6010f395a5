import { ErrorCodes, PvError } from '@pagevault/errors';
import { encodeIndexFile, readIndexFile } from './index-file';
import { keys } from './keys';
import type { PackEntry } from './pack';
import { PageFetcher } from './page-fetcher';
import type { LiveSet } from './prune-mark';
import type { PrunePlan, Repack } from './prune-plan';
import { TenantStore, type PackOptions } from './tenant-store';

/** Pages fetched and re-stored per step: with the writer's sealed packs, what bounds repack memory. */
const BATCH = 1024;

/**
 * Moves the live pages of partly dead packs into new packs. `reader` holds the index prune planned with:
 * its PageFetcher fetches each page from its current pack and checks it against its hash; a fresh
 * TenantStore (an empty index, so every page is stored) writes them, so the pack format and its order —
 * the pack, then the index file naming it — are the compactor's own. Everything is durable on return.
 */
export async function repackLive(reader: TenantStore, live: LiveSet, repack: Repack[], opts: PackOptions): Promise<TenantStore['stats']> {
  const ps = opts.pageSize;
  const writer = new TenantStore(reader.store, reader.tenant, opts);
  const fetcher = new PageFetcher(reader, ps, { cacheBytes: 16 << 20 });
  const out = Buffer.allocUnsafe(BATCH * ps);
  const hashAt = new Int32Array(BATCH);
  for (const r of repack) {
    const packKey = keys.pack(reader.tenant, r.sha);
    const hashes = Buffer.allocUnsafe(r.live * 32);
    let n = 0;
    readIndexFile(await reader.store.get(r.indexFile), r.indexFile, (h, at, loc) => {
      if (loc.pack !== r.sha || !live.pages.has(h, at)) return;
      const here = reader.index.get(h, at)!; // the copy that counted as live; a duplicate elsewhere did not
      if (here.pack !== r.sha || here.blobOffset !== loc.blobOffset || here.slot !== loc.slot) return;
      if (n === r.live) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `index ${r.indexFile} changed while prune ran: more live pages in ${packKey} than planned`, { details: { key: r.indexFile } });
      h.copy(hashes, n++ * 32, at, at + 32);
    });
    if (n !== r.live) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `index ${r.indexFile} changed while prune ran: ${n} live pages of ${packKey}, planned ${r.live}`, { details: { key: r.indexFile } });
    for (let i = 0; i < n; i += BATCH) {
      const k = Math.min(BATCH, n - i);
      for (let j = 0; j < k; j++) hashAt[j] = (i + j) * 32;
      await fetcher.fetch(hashes, hashAt, k, out, (j) => `page ${hashes.toString('hex', (i + j) * 32, (i + j + 1) * 32)} of ${packKey}`);
      for (let j = 0; j < k; j++) {
        writer.addPage(hashes.subarray((i + j) * 32, (i + j + 1) * 32), out, j * ps);
        if (writer.packFull) await writer.flushBehind();
      }
    }
  }
  await writer.flush();
  return writer.stats;
}

/**
 * For each index file that names a pack that goes but also packs that stay, writes a replacement with
 * the entries of the packs that stay (the old file is deleted later, after every replacement is durable).
 * Returns the files and bytes written.
 */
export async function rewriteIndexes(reader: TenantStore, drops: PrunePlan['dropIndexes']): Promise<{ files: number; bytes: number }> {
  const written = { files: 0, bytes: 0 };
  for (const d of drops) {
    if (d.keep.length === 0) continue;
    const keep = new Set(d.keep);
    const byPack = new Map<string, PackEntry[]>();
    readIndexFile(await reader.store.get(d.info.key), d.info.key, (h, at, { pack, ...entry }) => {
      if (keep.has(pack)) (byPack.get(pack) ?? byPack.set(pack, []).get(pack)!).push({ hash: h.subarray(at, at + 32), ...entry });
    });
    const idx = encodeIndexFile([...byPack].map(([sha, entries]) => ({ sha, entries })));
    await reader.store.put(keys.index(reader.tenant, idx.sha), idx.bytes);
    written.files++;
    written.bytes += idx.bytes.length;
  }
  return written;
}
