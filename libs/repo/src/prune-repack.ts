import { createHash } from 'node:crypto';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { encodeIndexFile, readIndexFile } from './index-file';
import { keys } from './keys';
import { NODE_PACK_BYTES, readNodePackTrailer, type NodeEntry } from './node-pack';
import type { BlobBases, PackEntry } from './pack';
import { PageFetcher } from './page-fetcher';
import type { LiveSet } from './prune-mark';
import { mapNodeBytes, type MapNode } from './page-map';
import type { NodeRepack, PrunePlan, Repack } from './prune-plan';
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
      // The copy that counted as live (a duplicate elsewhere did not), looked up without an object a page.
      const idx = reader.index;
      const here = idx.locate(h, at);
      if (idx.packOf(here) !== r.sha || idx.blobOffsetOf(here) !== loc.blobOffset || idx.slotOf(here) !== loc.slot) return;
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
 * Moves the live nodes of partly dead node packs into new node packs (each with its index file), checking
 * every node against its sha first. Everything is durable on return. Returns the node packs written, their
 * bytes and their index files' bytes.
 */
export async function repackNodes(reader: TenantStore, live: LiveSet, repack: NodeRepack[], opts: PackOptions): Promise<{ packs: number; bytes: number; indexBytes: number }> {
  const writer = new TenantStore(reader.store, reader.tenant, opts);
  const out = { packs: 0, bytes: 0, indexBytes: 0 };
  let batch: MapNode[] = [];
  let size = 0;
  const put = async () => {
    if (batch.length === 0) return;
    const w = await writer.putNodes(batch);
    out.packs++;
    out.bytes += w.bytes;
    batch = [];
    size = 0;
  };
  for (const r of repack) {
    const key = keys.mapNode(reader.tenant, r.sha);
    const b = await reader.store.get(key);
    let n = 0;
    for (const e of readNodePackTrailer(b, key)) {
      const sha = e.sha.toString('hex');
      if (!live.nodes.has(sha)) continue;
      const stored = b.subarray(e.offset, e.offset + e.length);
      if (createHash('sha256').update(mapNodeBytes(stored)).digest('hex') !== sha) {
        throw new PvError(ErrorCodes.OBJECT_CORRUPT, `node pack ${key}: node ${sha} does not match its hash: prune deletes nothing`, { details: { key, node: sha } });
      }
      batch.push({ sha, bytes: Buffer.from(stored) });
      size += stored.length;
      n++;
      if (size >= NODE_PACK_BYTES) await put();
    }
    if (n !== r.live) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `node pack ${key} holds ${n} live nodes, its index files ${r.live}: prune deletes nothing`, { details: { key } });
  }
  await put();
  out.indexBytes = writer.stats.indexBytes;
  return out;
}

/** Entries per merged index file (48 bytes each: 12 MiB), at index-file granularity. */
export const MERGED_INDEX_ENTRIES = 262_144;

/**
 * Writes the replacements of the index files prune drops, with the entries of the packs that stay: one
 * replacement per file, or, when consolidating, the entries of all of them merged into files of about
 * MERGED_INDEX_ENTRIES (a pack named by several files is taken from the first). The old files are deleted
 * later, after every replacement is durable. Returns the files and bytes written.
 */
export async function rewriteIndexes(reader: TenantStore, drops: PrunePlan['dropIndexes'], merge = false): Promise<{ files: number; bytes: number; unchanged: Set<string> }> {
  // A replacement can come out byte for byte as one of the files it replaces (a file merged alone): same
  // name, so that file must not be deleted afterwards. `unchanged` names those.
  const written = { files: 0, bytes: 0, unchanged: new Set<string>() };
  const dropped = new Set(drops.map((d) => d.info.key));
  const taken = new Set<string>();
  let byPack = new Map<string, PackEntry[]>();
  let basesOf = new Map<string, BlobBases[]>();
  let nodesOf = new Map<string, NodeEntry[]>();
  let entries = 0;
  const put = async () => {
    if (byPack.size === 0 && nodesOf.size === 0) return;
    const idx = encodeIndexFile([...byPack].map(([sha, e]) => ({ sha, entries: e, bases: basesOf.get(sha) })), [...nodesOf].map(([sha, e]) => ({ sha, entries: e })));
    const key = keys.index(reader.tenant, idx.sha);
    byPack = new Map();
    basesOf = new Map();
    nodesOf = new Map();
    entries = 0;
    if (dropped.has(key)) {
      written.unchanged.add(key);
      return;
    }
    await reader.store.put(key, idx.bytes);
    written.files++;
    written.bytes += idx.bytes.length;
  };
  for (const d of drops) {
    if (d.keep.length === 0) continue;
    const keep = new Set(d.keep.filter((p) => !taken.has(p)));
    readIndexFile(
      await reader.store.get(d.info.key),
      d.info.key,
      (h, at, { pack, ...entry }) => {
        if (!keep.has(pack)) return;
        (byPack.get(pack) ?? byPack.set(pack, []).get(pack)!).push({ hash: h.subarray(at, at + 32), ...entry, depth: entry.depth ?? 0 });
        entries++;
      },
      (pack, blobOffset, b, at, n) => {
        if (keep.has(pack)) (basesOf.get(pack) ?? basesOf.set(pack, []).get(pack)!).push({ blobOffset, hashes: b.subarray(at, at + n * 32) });
      },
      (pack, b, at, e) => {
        if (!keep.has(pack)) return;
        (nodesOf.get(pack) ?? nodesOf.set(pack, []).get(pack)!).push({ sha: b.subarray(at, at + 32), ...e });
        entries++;
      },
    );
    for (const p of keep) taken.add(p);
    if (!merge || entries >= MERGED_INDEX_ENTRIES) await put();
  }
  await put();
  return written;
}
