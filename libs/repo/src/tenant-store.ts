import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import type { PageHasher } from '@pagevault/hashing';
import type { ObjectStore } from '@pagevault/objstore';
import { checkIndexFile, encodeIndexFile, isIndexFileKey, loadIndexFile } from './index-file';
import { basename, checkTenant, keys } from './keys';
import { pruneGeneration, scanLocks } from './lock-scan';
import type { FailedSnapshot, Manifest } from './manifest';
import { manifestBytes, parseManifest } from './manifest';
import { NodeStore, encodeNodePack, type SealedNodePack } from './node-pack';
import { PackBuilder, type SealedPack } from './pack';
import { PageFetcher } from './page-fetcher';
import { RecentPages } from './recent-pages';
import { PageIndex } from './page-index';
import type { MapNode } from './page-map';

export interface RepoOptions {
  /** zstd level for new packs (default 1). */
  compressionLevel?: number;
  /** A pack is sealed once its compressed bytes reach this (default 12 MiB). */
  packTargetBytes?: number;
  pageSize?: number;
  /**
   * Bytes of recently stored pages kept by hash (default 1 GiB, one cache for all of a Repository's
   * tenants, taken at the first new page; 0: none): the next snapshot of a process finds its delta bases
   * there without a GET (recent-pages.ts).
   */
  recentPagesBytes?: number;
  /**
   * Bytes of the page maps of recently ingested VMAs kept by root (default 256 MiB, one cache for all of
   * a Repository's tenants; 0: none): an incremental reads its parent's maps from there instead of the
   * store (recent-maps.ts).
   */
  recentMapsBytes?: number;
  /**
   * Store a changed page as a delta against the parent's page at its address (default true; pack.ts).
   * Off, pages are stored whole: the compactor does less work, the store holds more.
   */
  delta?: boolean;
  /** Hashes pages (default: the process's shared PageHasher, on every core). */
  hasher?: PageHasher;
}

export type PackOptions = Required<Omit<RepoOptions, 'hasher'>>;

/** How packs are written when nothing says otherwise (an option given as undefined is not given). */
export function packOptions(o: Omit<RepoOptions, 'hasher'> = {}): PackOptions {
  const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  return { compressionLevel: 1, packTargetBytes: 12 << 20, pageSize: 4096, recentPagesBytes: 1 << 30, recentMapsBytes: 256 << 20, delta: true, ...given };
}

/** Where a page queued for the pack being filled is: nowhere yet (the pending index only answers `has`). */
const PENDING = { pack: '', blobOffset: 0, blobLength: 0, slot: 0, blobPages: 0 };

/**
 * One tenant's slice of the repository: the dedup scope. Holds the page index and the node index (both
 * rebuilt from the index files in the store) and the pack being filled.
 * Ordering invariant (restic's): packs and node packs, then the index files naming them, then the manifest.
 */
export class TenantStore {
  private idx = new PageIndex();
  /** Pages in the pack being filled: not durable yet. */
  private pending = new PageIndex();
  /** Sealed packs being uploaded, oldest first: their pages (to dedup against) and the upload. */
  private readonly uploading: { pages: PageIndex; done: Promise<unknown> }[] = [];
  private builder: PackBuilder;
  private loadedIndexes = new Set<string>();
  private damaged = new Map<string, PvError>();
  /** Where page-map nodes are, and reading them (node-pack.ts). */
  private nodeStore: NodeStore;
  private refreshSeq = 0;
  private refreshDone = 0;
  private refreshing: Promise<void> | undefined;
  /** The prune generation the index is consistent with (lock-scan.ts); undefined: unknown, rebuilt at the next lock. */
  private generation: string | undefined;
  private flushChain: Promise<unknown> = Promise.resolve();
  private failure: unknown;
  private fetcher: PageFetcher | undefined;
  /** A rebuild of the index after a pack or node pack was found gone (rebuildIndexSince). */
  private rebuilding: Promise<void> | undefined;
  private recent: RecentPages | undefined;
  readonly stats = { packs: 0, packBytes: 0, pagesStored: 0, indexBytes: 0 };

  constructor(
    readonly store: ObjectStore,
    readonly tenant: string,
    private readonly opts: PackOptions,
    /** The RecentPages this store keeps its new pages in (a Repository shares one among its tenants). */
    private readonly recentPages?: () => RecentPages,
    /** Counts the packs this store commits, beside its own stats (a Repository's total, over every store it opened). */
    private readonly written?: { packs: number },
  ) {
    checkTenant(tenant);
    this.builder = new PackBuilder(opts.pageSize, opts.compressionLevel);
    this.nodeStore = this.newNodeStore();
  }

  /** Page hash -> where it is stored, for every index file loaded so far and every pack this process flushed. */
  get index(): PageIndex {
    return this.idx;
  }

  /**
   * First load of the index. The prune generation is read before it: a prune that deletes anything while
   * the index loads changes the generation first, so the next lock sees the change and rebuilds. Read
   * while a prune holds its lock, the generation is unknown.
   */
  async open(staleMs: number): Promise<void> {
    const scan = await scanLocks(this.store, this.tenant, staleMs);
    await this.refreshIndex();
    this.generation = scan.live.some((l) => l.kind === 'exclusive') ? undefined : pruneGeneration(scan);
  }

  /**
   * Called under the tenant's shared lock with the generation its LIST found: after a prune the index
   * (pages and map nodes) is rebuilt, so nothing deduplicates against an object the prune deleted.
   */
  async matchGeneration(generation: string): Promise<void> {
    if (this.generation === generation) return;
    await this.reloadIndex();
    this.generation = generation;
  }

  /** The index can no longer be trusted to predate no prune (a lock was lost): rebuilt at the next lock. */
  forgetGeneration(): void {
    this.generation = undefined;
  }

  /** Settles once no pack upload is in flight (a failed one included). */
  idle(): Promise<void> {
    return this.flushChain.then(() => undefined);
  }

  /** Loads index files written since the last call (by this or any other compactor). */
  async refreshIndex(): Promise<void> {
    await this.loadIndexes(this.idx, this.loadedIndexes, this.nodeStore.index);
  }

  /** Settles after a refreshIndex that began after this call (concurrent callers share one). */
  private async refreshedIndex(): Promise<void> {
    const need = this.refreshSeq + 1;
    while (this.refreshDone < need) {
      if (!this.refreshing) {
        const seq = ++this.refreshSeq;
        this.refreshing = this.refreshIndex().finally(() => {
          this.refreshing = undefined;
          this.refreshDone = seq;
        });
      }
      await this.refreshing;
    }
  }

  /** A node store whose misses first load the index files written since (another compactor's snapshot). */
  private newNodeStore(): NodeStore {
    return new NodeStore(this.store, this.tenant, () => this.refreshedIndex());
  }

  /**
   * Rebuilds the index from the index files in the store now. A prune deletes index files and packs
   * (docs/storage.md): locations loaded before it may name packs that are gone, and only a rebuild
   * forgets them. Entries of a flush that lands meanwhile may be missed: that page is stored again.
   */
  async reloadIndex(): Promise<void> {
    const idx = new PageIndex();
    const loaded = new Set<string>();
    const nodes = this.newNodeStore();
    this.damaged = new Map();
    await this.loadIndexes(idx, loaded, nodes.index);
    this.idx = idx;
    this.loadedIndexes = loaded;
    this.nodeStore = nodes;
  }

  /**
   * Loads the index files not in `loaded`. A damaged one (it does not hash to its name, or does not
   * parse) is left out and kept in `damagedIndexes`: its pages look missing (a snapshot stores them
   * again; a restore that needs one fails naming repair-index), instead of every command failing.
   */
  private async loadIndexes(into: PageIndex, loaded: Set<string>, nodes: PageIndex): Promise<void> {
    for await (const o of this.store.list(keys.indexes(this.tenant))) {
      const sha = basename(o.key);
      if (loaded.has(sha) || this.damaged.has(o.key) || !isIndexFileKey(o.key)) continue;
      let b: Buffer;
      try {
        b = checkIndexFile(await this.store.get(o.key), o.key);
        loadIndexFile(b, o.key, into, nodes);
      } catch (e) {
        if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) continue; // deleted since the LIST (a prune)
        if (!isPvError(e, ErrorCodes.OBJECT_CORRUPT)) throw e;
        this.damaged.set(o.key, e);
        continue;
      }
      loaded.add(sha);
    }
  }

  /** The page size this store writes and reads its packs with. */
  get pageSize(): number {
    return this.opts.pageSize;
  }

  /** Index files found damaged and left out (see loadIndexes); `pagevault repair-index` replaces them. */
  get damagedIndexes(): PvError[] {
    return [...this.damaged.values()];
  }

  /** Whether changed pages of incremental snapshots are stored as deltas (RepoOptions.delta). */
  get deltas(): boolean {
    return this.opts.delta;
  }

  /** Delta blobs sampled so far, compressed as deltas and whole (PackBuilder.deltaSample). */
  get deltaSample(): Readonly<PackBuilder['deltaSample']> {
    return this.builder.deltaSample;
  }

  /** True when the page is stored or on its way (so addPage would not store it). */
  holds(hash: Uint8Array, hashOffset = 0): boolean {
    return this.idx.has(hash, hashOffset) || this.pending.has(hash, hashOffset) || this.uploading.some((u) => u.pages.has(hash, hashOffset));
  }

  /**
   * True when the page is stored or on its way; otherwise queues it for the current pack. A base (a
   * page stored already, which the new one replaced: its hash at baseHash[baseHashAt], its bytes at
   * baseData[baseDataAt], its blob's depth) makes the page's blob a delta blob on it (pack.ts).
   */
  addPage(hash: Buffer, data: Uint8Array, offset: number, baseHash?: Uint8Array, baseHashAt = 0, baseData?: Uint8Array, baseDataAt = 0, baseDepth = 0): boolean {
    if (this.idx.has(hash) || this.uploading.some((u) => u.pages.has(hash))) return false;
    if (!this.pending.add(hash, 0, PENDING)) return false; // already in the pack being filled
    this.builder.add(Buffer.from(hash), data, offset, baseHash, baseHashAt, baseData, baseDataAt, baseDepth); // the caller reuses its hash buffer
    if (this.opts.recentPagesBytes > 0) (this.recent ??= this.recentPages?.() ?? new RecentPages(this.opts.pageSize, this.opts.recentPagesBytes)).put(hash, 0, data, offset);
    return true;
  }

  /**
   * Copies the pages this store kept when it stored them (RecentPages) to out[i × pageSize] and marks
   * them in `held` (the bases of delta blobs); returns how many. Each is let go once taken.
   */
  takeRecent(hashes: Buffer, hashAt: Int32Array, n: number, out: Buffer, held: Uint8Array): number {
    let m = 0;
    for (let i = 0; i < n; i++) {
      held[i] = this.recent?.take(hashes, hashAt[i]!, out, i * this.opts.pageSize) ? 1 : 0;
      m += held[i]!;
    }
    return m;
  }

  /**
   * Reads the pages not marked in `held` back from their packs into out[i × pageSize], through a fetcher
   * of this store's own, which keeps 32 MiB of the blobs it inflated (bases that share a blob cost one
   * GET), and marks them held once all are in. Returns how many.
   */
  async fetchStored(hashes: Buffer, hashAt: Int32Array, n: number, out: Buffer, held: Uint8Array, where: (i: number) => string): Promise<number> {
    const ps = this.opts.pageSize;
    let m = 0;
    const missAt = new Int32Array(n);
    const missOut = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      if (held[i]) continue;
      missAt[m] = hashAt[i]!;
      missOut[m++] = i;
    }
    if (m === 0) return 0;
    const got = Buffer.allocUnsafe(m * ps);
    this.fetcher ??= new PageFetcher(this, ps, { cacheBytes: 32 << 20 });
    await this.fetcher.fetch(hashes, missAt, m, got, (j) => where(missOut[j]!));
    for (let j = 0; j < m; j++) {
      got.copy(out, missOut[j]! * ps, j * ps, (j + 1) * ps);
      held[missOut[j]!] = 1;
    }
    return m;
  }

  /** A flush failed (see flush): nothing more can commit through this store; a Repository opens a fresh one. */
  get poisoned(): boolean {
    return this.failure !== undefined;
  }

  get packFull(): boolean {
    return this.builder.bytes >= this.opts.packTargetBytes;
  }

  /**
   * Seals the current pack and makes every page added so far durable (pack, then index file), with
   * `nodes` (page-map nodes) in a node pack named by the same index file (nodes already durable are
   * skipped); `sealPages: false` writes the nodes alone and leaves the pack being filled open. A pack's
   * upload starts at once, beside the flushes before it (a pack is named by its bytes: one uploaded
   * twice or left unnamed is harmless); the rest of a flush (node pack, index file, pages into the index)
   * runs after theirs, so flushes complete in order and a snapshot waits for its last one only. A failed
   * flush poisons the store for good, because snapshots that deduplicated against its pages must not
   * commit (Repository.tenant then opens a fresh store, whose index comes from the bucket). Resolves with the nodes written and their bytes.
   */
  flush(nodes: MapNode[] = [], { sealPages = true } = {}): Promise<{ written: number; bytes: number }> {
    const sealed = sealPages ? this.builder.seal() : undefined;
    const pages = this.pending;
    if (sealed) this.pending = new PageIndex();
    const upload = sealed && !this.failure ? this.store.put(keys.pack(this.tenant, sealed.sha), sealed.bytes, sealed.sha) : undefined;
    upload?.catch(() => undefined); // settled below, after the flushes before this one
    const p = this.flushChain.then(async () => {
      if (this.failure) throw this.failure;
      const np = this.nodePack(nodes);
      if (!sealed && !np) return { written: 0, bytes: 0 };
      // A node pack that fails only fails the snapshot it belongs to; the pages still become durable.
      const [packPut, nodesPut] = await Promise.allSettled([
        upload,
        np && this.store.put(keys.mapNode(this.tenant, np.sha), np.bytes, np.sha),
      ]);
      const named = nodesPut.status === 'fulfilled' ? np : undefined;
      try {
        if (packPut.status === 'rejected') throw packPut.reason;
        if (sealed || named) {
          const idx = encodeIndexFile(sealed ? [sealed] : [], named ? [named] : []);
          await this.store.put(keys.index(this.tenant, idx.sha), idx.bytes, idx.sha);
          this.loadedIndexes.add(idx.sha);
          this.stats.indexBytes += idx.bytes.length;
        }
      } catch (e) {
        if (sealed) this.failure = e;
        throw e;
      }
      if (sealed) this.commitPack(sealed);
      if (nodesPut.status === 'rejected') throw nodesPut.reason;
      if (!named) return { written: 0, bytes: 0 };
      this.nodeStore.addPack(named);
      return { written: named.entries.length, bytes: named.bytes.length };
    });
    this.flushChain = p.catch(() => undefined);
    if (sealed) {
      // Dropped once settled: by then its pages are in the index (or the store is poisoned).
      const upload = { pages, done: p };
      this.uploading.push(upload);
      const settled = () => void this.uploading.splice(this.uploading.indexOf(upload), 1);
      p.then(settled, settled);
    }
    return p;
  }

  /** The nodes not durable yet, once each, in a node pack; undefined when none is left. */
  private nodePack(nodes: MapNode[]): SealedNodePack | undefined {
    const seen = new Set<string>();
    const todo = nodes.filter((n) => !seen.has(n.sha) && (seen.add(n.sha), !this.nodeStore.has(n.sha)));
    return todo.length ? encodeNodePack(todo) : undefined;
  }

  /**
   * Starts a flush without waiting for it, then waits only while more than `maxInFlight` packs are
   * uploading: packs upload while the caller hashes and compresses the next ones, and sealed packs
   * waiting for upload stay bounded. A failed flush throws here or at the next flush.
   */
  async flushBehind(maxInFlight = 2): Promise<void> {
    this.flush().catch(() => undefined); // its failure poisons the store: the next flush or wait throws it
    while (this.uploading.length > maxInFlight) await this.uploading[0]!.done;
    if (this.failure) throw this.failure;
  }

  private commitPack(p: SealedPack): void {
    for (const e of p.entries) this.idx.add(e.hash, 0, { pack: p.sha, ...e });
    this.stats.packs++;
    if (this.written) this.written.packs++;
    this.stats.packBytes += p.bytes.length;
    this.stats.pagesStored += p.entries.length;
  }

  /** Whether a page-map node is durable in a node pack (so a snapshot need not store it again). */
  holdsNode(sha: string): boolean {
    return this.nodeStore.has(sha);
  }

  /**
   * Stores page-map nodes in a node pack and the index file naming them, after the flushes before it
   * (node-pack.ts); nodes already durable are skipped (two snapshots racing may both store one:
   * harmless). Resolves with the nodes written and the pack's bytes.
   */
  putNodes(nodes: MapNode[]): Promise<{ written: number; bytes: number }> {
    return this.flush(nodes, { sealPages: false }); // the pack being filled stays open
  }

  /**
   * A page-map node's stored bytes, from its node pack (checked against its sha by decodeMapNode). A
   * prune since the index was loaded may have repacked the node pack and deleted it: the index is then
   * rebuilt once (one rebuild shared by every load that failed meanwhile) and the node read again, as
   * the PageFetcher does for packs.
   */
  loadNode = async (sha: string): Promise<Buffer> => {
    const idx = this.idx;
    try {
      return await this.nodeStore.load(sha);
    } catch (e) {
      const key = isPvError(e, ErrorCodes.OBJECT_NOT_FOUND) ? e.details['key'] : undefined;
      if (typeof key !== 'string' || !key.startsWith(keys.mapNodes(this.tenant))) throw e;
      await this.rebuildIndexSince(idx);
      return this.nodeStore.load(sha);
    }
  };

  /**
   * reloadIndex for a reader that found an object of `seen` gone (a prune since): nothing when the index
   * was rebuilt since `seen`, and one rebuild shared by every reader that asks while it runs.
   */
  async rebuildIndexSince(seen: PageIndex): Promise<void> {
    if (this.idx !== seen) return;
    await (this.rebuilding ??= this.reloadIndex().finally(() => (this.rebuilding = undefined)));
  }

  async putManifest(m: Manifest): Promise<void> {
    await this.store.put(keys.manifest(this.tenant, m.snapshotId), manifestBytes(m));
  }

  async putFailed(f: FailedSnapshot): Promise<void> {
    await this.store.put(keys.failed(this.tenant, f.snapshotId), Buffer.from(JSON.stringify(f, null, 1)));
  }

  async getManifest(id: string): Promise<Manifest> {
    const key = keys.manifest(this.tenant, id);
    try {
      return parseManifest(await this.store.get(key), key);
    } catch (e) {
      if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) {
        throw new PvError(ErrorCodes.UNKNOWN_SNAPSHOT, `no snapshot ${id} for tenant ${this.tenant} in ${this.store.description}`, { details: { snapshot: id, tenant: this.tenant } });
      }
      throw e;
    }
  }

  /** Every manifest, oldest first; a damaged one (PV_OBJECT_CORRUPT) fails the listing (prune relies on it). */
  async listManifests(): Promise<Manifest[]> {
    const { manifests, unreadable } = await this.readManifests();
    if (unreadable[0]) throw unreadable[0];
    return manifests;
  }

  /**
   * Every manifest that parses, oldest first, and the PV_OBJECT_CORRUPT error of each that does not (its
   * key in details.key, its snapshot id in details.snapshot): for listings and checks that report a damaged
   * manifest and go on. Any other failure (the store) throws.
   */
  async readManifests(): Promise<{ manifests: Manifest[]; unreadable: PvError[] }> {
    const manifests: Manifest[] = [];
    const unreadable: PvError[] = [];
    for await (const o of this.store.list(keys.manifests(this.tenant))) {
      const body = await this.store.get(o.key);
      try {
        manifests.push(parseManifest(body, o.key));
      } catch (e) {
        if (!isPvError(e, ErrorCodes.OBJECT_CORRUPT)) throw e;
        const snapshot = /([0-9a-f]{32})\.json$/.exec(o.key)?.[1];
        unreadable.push(snapshot ? new PvError(e.code, e.message, { cause: e.cause, details: { ...e.details, snapshot } }) : e);
      }
    }
    manifests.sort((a, b) => a.startTimeMs - b.startTimeMs || a.committedAtMs - b.committedAtMs);
    return { manifests, unreadable };
  }
}
