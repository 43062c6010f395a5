import { ErrorCodes, PvError, hex, isPvError } from '@pagevault/errors';
import {
  Consistency, FrameType, SnapshotMode, StreamValidator, idToHex, type Frame, type SnapshotBegin, type VmaHeader,
} from '@pagevault/format';
import type { Manifest, ManifestVma } from './manifest';
import { NODE_PACK_BYTES } from './node-pack';
import { MAX_DELTA_DEPTH } from './pack';
import { PageKind, PageList } from './page-list';
import { buildPageMap, readPageMap, type MapNode } from './page-map';
import type { Repository } from './repository';
import type { SharedHold } from './shared-lock';
import type { TenantStore } from './tenant-store';

export interface IngestOptions {
  /** Called while the snapshot waits for a prune to release the tenant (at most every 2 s): keep the consumer alive. */
  onLockWait?: () => void | Promise<void>;
  /** New map nodes go out in a node pack once this many bytes gather (default NODE_PACK_BYTES, 4 MiB). */
  nodePackBytes?: number;
}

/** Parent page maps read at once ahead of the frames that need them. */
const PARENT_MAPS_IN_FLIGHT = 8;

/**
 * A chunk whose bases are at least this share in the compactor's memory stores the pages of the others
 * whole rather than wait for their reads (a base read from S3 may need its own chain read first, a
 * round trip a level); a chunk below it (a compactor that did not store the parent) reads them.
 */
const WARM_BASES = 0.75;

/** Sampled delta blobs a snapshot's decision on deltas waits for (ingest.deltasPay). */
const SAMPLE_BLOBS = 4;

/** New pages a snapshot stores whole once its deltas stopped paying, before it samples them again. */
const RETRY_PAGES = 8192;

const CONSISTENCY = { [Consistency.Frozen]: 'frozen', [Consistency.Live]: 'live', [Consistency.PreCopy]: 'precopy' } as const;

/**
 * Turns the frames of one snapshot into stored objects: verifies each frame (StreamValidator), hashes
 * every page and deduplicates it against the tenant, resolves "same as parent" from the parent's page
 * map, writes each VMA's page map at its end, and at snapshot end makes the packs durable and writes the
 * manifest last. Memory: the hashes of the current VMA's pages (32 bytes a page) and the parent's map.
 *
 * From its begin until its manifest is written (or `release`, after a failure) the snapshot holds a share
 * of its tenant's shared lock, so no prune deletes what it deduplicates against; taking it waits while a
 * prune runs. Whoever drops an ingest before its end MUST call `release`.
 */
export class SnapshotIngest {
  readonly id: string;
  private readonly validator: StreamValidator;
  private begin: SnapshotBegin | undefined;
  private tenant: TenantStore | undefined;
  private vma: { header: VmaHeader; list: PageList } | undefined;
  private readonly vmas: ManifestVma[] = [];
  private parent: { manifest: Manifest; byStart: ManifestVma[]; lists: Map<number, Promise<{ list: PageList; order: Int32Array }>> } | undefined;
  private readonly counts = { newPages: 0, deltaPages: 0, basesFetched: 0, mapNodesWritten: 0, mapBytesWritten: 0 };
  /** The tenant store's pack bytes and pages stored when this snapshot began (see newBytes). */
  private packBytesBefore = 0;
  private pagesStoredBefore = 0;
  private hashes = Buffer.allocUnsafe(256 * 32);
  /** The pack writer's delta sample when this snapshot's window began, and its new pages when deltas stopped paying (-1: on). */
  private sampleAtBegin = { blobs: 0, deltaBytes: 0, plainBytes: 0 };
  private deltasOffAt = -1;
  /** A chunk's delta bases (findBases): page i of the chunk, whether its bytes are at hand, the base's hash, bytes and blob depth. */
  private bases = { of: new Int32Array(0), at: new Int32Array(0), depth: new Uint8Array(0), held: new Uint8Array(0), hashes: Buffer.alloc(0), data: Buffer.alloc(0) };
  /** Map nodes of ended VMAs not yet in a node pack: they go out together (node-pack.ts). */
  private nodes: MapNode[] = [];
  private nodeBytes = 0;
  private readonly nodeUploads: Promise<void>[] = [];
  private hold: SharedHold | undefined;
  /** The tenant lock being taken (snapshot-begin), until it is held or given up. */
  private locking: Promise<boolean> | undefined;
  private readonly dropped = new AbortController();

  constructor(
    private readonly repo: Repository,
    snapshotId: Uint8Array,
    private readonly opts: IngestOptions = {},
  ) {
    this.id = idToHex(snapshotId);
    this.validator = new StreamValidator(snapshotId);
  }

  /**
   * The snapshot's tenant once the repository has accepted it (a valid name, its store open): a failure
   * can be recorded under it. A begin naming a tenant the repository refuses leaves it undefined.
   */
  get tenantName(): string | undefined {
    return this.tenant?.tenant;
  }

  /** Feeds the next frame. Resolves with the manifest once snapshot-end has been made durable. */
  async accept(f: Frame): Promise<Manifest | undefined> {
    this.validator.accept(f);
    const b = f.body;
    switch (b.type) {
      case FrameType.SnapshotBegin:
        this.begin = b.begin;
        this.tenant = await this.repo.tenant(b.begin.tenant);
        this.locking = this.lock(this.tenant);
        if (!(await this.locking)) return undefined;
        this.packBytesBefore = this.tenant.stats.packBytes;
        this.pagesStoredBefore = this.tenant.stats.pagesStored;
        this.sampleAtBegin = { ...this.tenant.deltaSample };
        if (b.begin.parentId) await this.loadParent(idToHex(b.begin.parentId));
        return undefined;
      case FrameType.VmaBegin:
        this.vma = { header: b.vma, list: new PageList(this.begin!.pageSize) };
        return undefined;
      case FrameType.PageChunk:
        await this.addData(b.addresses, b.data);
        return undefined;
      case FrameType.ZeroRuns:
      case FrameType.FileRuns:
        for (const r of b.runs) this.vma!.list.add(r.start, r.pages, b.type === FrameType.ZeroRuns ? PageKind.Zero : PageKind.File);
        return undefined;
      case FrameType.ParentRuns:
        for (const r of b.runs) await this.addFromParent(r.start, r.pages);
        return undefined;
      case FrameType.VmaEnd:
        await this.endVma();
        return undefined;
      case FrameType.SnapshotEnd:
        return this.commit(idToHex(b.end.digest), b.end.parentPages);
      case FrameType.Abort:
        throw new PvError(ErrorCodes.STREAM_ABORTED, `snapshot ${this.id} was aborted by its producer: ${b.code}: ${b.message}`, { details: { snapshot: this.id, reason: b.code } });
    }
  }

  /**
   * Gives back the snapshot's share of the tenant lock, once the map nodes it is uploading have settled
   * (uploads begun under the lock end under it). Idempotent; never rejects; a share still being waited
   * for is abandoned, and one being taken is given back once taken, before this resolves.
   */
  async release(): Promise<void> {
    this.dropped.abort();
    await this.locking?.catch(() => undefined);
    const h = this.hold;
    this.hold = undefined;
    if (!h) return;
    await Promise.allSettled(this.nodeUploads);
    await h.release();
  }

  /** False when the ingest was released while it waited: it was dropped, and nothing more is done. */
  private async lock(t: TenantStore): Promise<boolean> {
    const signal = this.dropped.signal;
    let hold: SharedHold;
    try {
      hold = await this.repo.lockShared(t, { signal, onWait: this.opts.onLockWait });
    } catch (e) {
      if (signal.aborted) return false;
      throw e;
    }
    if (signal.aborted) {
      await hold.release(); // released while it was being taken: nothing was done under it
      return false;
    }
    this.hold = hold;
    return true;
  }

  private async addData(addrs: Float64Array, data: Buffer): Promise<void> {
    const ps = this.begin!.pageSize;
    const n = addrs.length;
    if (this.hashes.length < n * 32) this.hashes = Buffer.allocUnsafe(n * 32);
    const t = this.tenant!;
    this.repo.hashPages(data, n, ps, this.hashes);
    const k = this.parent && t.deltas && this.deltasPay() ? await this.findBases(addrs, n) : 0;
    const bs = this.bases;
    for (let i = 0, b = 0; i < n; i++) {
      const h = this.hashes.subarray(i * 32, i * 32 + 32);
      const based = b < k && bs.of[b] === i;
      if (based && bs.held[b]) {
        if (t.addPage(h, data, i * ps, bs.hashes, b * 32, bs.data, b * ps, bs.depth[b])) {
          this.counts.newPages++;
          this.counts.deltaPages++;
        }
      } else if (t.addPage(h, data, i * ps)) this.counts.newPages++;
      if (based) b++;
    }
    // Data pages of one chunk are ascending but need not be contiguous: one run per contiguous stretch.
    let s = 0;
    for (let i = 1; i <= n; i++) {
      if (i === n || addrs[i] !== addrs[i - 1]! + ps) {
        this.vma!.list.add(addrs[s]!, i - s, PageKind.Data, this.hashes, s * 32);
        s = i;
      }
    }
    if (t.packFull) await t.flushBehind();
  }

  /**
   * Whether looking for bases still pays in this snapshot: once SAMPLE_BLOBS of its delta blobs were
   * also compressed whole, deltas that save less than a quarter (pages rewritten, not edited: random
   * bytes, a new allocation over an old one, a heap's young generation) stop for RETRY_PAGES new pages,
   * then are sampled again: one region of rewritten pages must not cost a whole process its deltas.
   */
  private deltasPay(): boolean {
    const now = this.tenant!.deltaSample;
    if (this.deltasOffAt >= 0) {
      if (this.counts.newPages - this.deltasOffAt < RETRY_PAGES) return false;
      this.deltasOffAt = -1;
      this.sampleAtBegin = { ...now };
      return true;
    }
    const was = this.sampleAtBegin;
    if (now.blobs - was.blobs < SAMPLE_BLOBS) return true;
    if (now.deltaBytes - was.deltaBytes <= 0.75 * (now.plainBytes - was.plainBytes)) return true;
    this.deltasOffAt = this.counts.newPages;
    return false;
  }

  /**
   * The bases of a chunk's new pages: for each page the tenant does not hold, the parent's page at its
   * address when that is stored (not in a pack still being written) and not at the end of a longest
   * delta chain; their bytes come from the compactor's memory, else are read back in one fetch (unless
   * the chunk is warm: WARM_BASES). Returns how many (this.bases); a base not marked held has no bytes
   * (not read, or it could not be: a pack gone or corrupt), and its page is stored whole.
   */
  private async findBases(addrs: Float64Array, n: number): Promise<number> {
    const src = await this.parentVma(addrs[0]!);
    if (!src) return 0;
    const t = this.tenant!;
    const idx = t.index;
    const ps = this.begin!.pageSize;
    let bs = this.bases;
    if (bs.of.length < n) {
      bs = this.bases = { of: new Int32Array(n), at: new Int32Array(n), depth: new Uint8Array(n), held: new Uint8Array(n), hashes: Buffer.allocUnsafe(n * 32), data: Buffer.allocUnsafe(n * ps) };
    }
    let k = 0;
    for (let i = 0; i < n && addrs[i]! < src.end; i++) {
      if (t.holds(this.hashes, i * 32)) continue;
      const off = src.list.dataHashAt(addrs[i]!, src.order);
      if (off < 0) continue;
      const r = idx.locate(src.list.hashes, off);
      if (r < 0 || idx.depthOf(r) >= MAX_DELTA_DEPTH) continue;
      bs.of[k] = i;
      bs.at[k] = k * 32;
      bs.depth[k] = idx.depthOf(r);
      src.list.hashes.copy(bs.hashes, k * 32, off, off + 32);
      k++;
    }
    if (k === 0) return 0;
    const inMemory = t.takeRecent(bs.hashes, bs.at, k, bs.data, bs.held);
    if (inMemory === k || inMemory >= WARM_BASES * k) return k;
    try {
      this.counts.basesFetched += await t.fetchStored(bs.hashes, bs.at, k, bs.data, bs.held, (j) => `snapshot ${this.id}: base of the page at ${hex(addrs[bs.of[j]!]!)}`);
    } catch (e) {
      if (!(isPvError(e, ErrorCodes.OBJECT_NOT_FOUND) || isPvError(e, ErrorCodes.OBJECT_CORRUPT) || isPvError(e, ErrorCodes.PAGE_HASH_MISMATCH))) throw e;
    }
    return k;
  }

  /**
   * This snapshot's share of the packs the tenant's store wrote while it was ingested: their bytes, in
   * the proportion of its new pages to all the pages they hold. Exact when it was ingested alone; when
   * snapshots of one tenant are ingested at the same time their pages share packs (and blobs), and each
   * counts its share instead of every pack written meanwhile.
   */
  private newBytes(t: TenantStore): number {
    const pages = t.stats.pagesStored - this.pagesStoredBefore;
    return pages > 0 ? Math.round(((t.stats.packBytes - this.packBytesBefore) * Math.min(this.counts.newPages, pages)) / pages) : 0;
  }

  private async loadParent(parentId: string): Promise<void> {
    let manifest: Manifest;
    try {
      manifest = await this.tenant!.getManifest(parentId);
    } catch (e) {
      throw new PvError(ErrorCodes.PARENT_MISSING, `snapshot ${this.id}: parent snapshot ${parentId} does not exist for tenant ${this.begin!.tenant}`, { cause: e, details: { snapshot: this.id, parent: parentId } });
    }
    this.parent = { manifest, byStart: [...manifest.vmas].sort((a, b) => a.start - b.start), lists: new Map() };
    this.prefetchParentMaps();
  }

  /**
   * Starts reading the parent's page maps, PARENT_MAPS_IN_FLIGHT VMAs at a time in address order, while
   * the frames arrive: a process with a thousand VMAs must not pay a round trip per VMA when its frames
   * ask for them one after the other. A map that fails is reported to whoever asks for it.
   */
  private prefetchParentMaps(): void {
    const vmas = this.parent!.manifest.vmas.filter((v) => v.map);
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < vmas.length && !this.dropped.signal.aborted) await this.parentMap(vmas[next++]!).catch(() => undefined);
    };
    for (let i = 0; i < PARENT_MAPS_IN_FLIGHT; i++) void lane();
  }

  private parentMap(v: ManifestVma): Promise<{ list: PageList; order: Int32Array }> {
    const p = this.parent!;
    let got = p.lists.get(v.index);
    const kept = got ? undefined : this.repo.recentMaps.get(v.map!);
    if (kept) p.lists.set(v.index, (got = Promise.resolve(kept)));
    if (!got) {
      got = readPageMap(v.map!, p.manifest.pageSize, this.tenant!.loadNode).then((list) => ({ list, order: list.order(`parent ${p.manifest.snapshotId}`) }));
      got.catch(() => undefined); // reported to the frame that needs it
      p.lists.set(v.index, got);
    }
    return got;
  }

  private async parentVma(addr: number): Promise<{ list: PageList; order: Int32Array; end: number } | undefined> {
    const p = this.parent;
    const v = p && vmaAt(p.byStart, addr);
    if (!p || !v?.map) return undefined;
    return { ...(await this.parentMap(v)), end: v.end };
  }

  /** Resolves a "same as parent" run from the parent's map: a run of ours for each parent run it covers. */
  private async addFromParent(start: number, pages: number): Promise<void> {
    const ps = this.begin!.pageSize;
    const list = this.vma!.list;
    let addr = start;
    const end = start + pages * ps;
    while (addr < end) {
      const src = await this.parentVma(addr);
      const i = src ? src.list.runAt(addr, src.order) : -1;
      if (!src || i < 0) {
        throw new PvError(ErrorCodes.PARENT_MISSING, `snapshot ${this.id}: page ${hex(addr)} is "same as parent" but parent ${idToHex(this.begin!.parentId!)} has no such page`, { details: { snapshot: this.id, address: hex(addr) } });
      }
      const p = src.list;
      const n = (Math.min(end, p.runEnd(i)) - addr) / ps;
      if (p.kinds[i] === PageKind.Data) list.add(addr, n, PageKind.Data, p.hashes, p.hashAt[i]! + ((addr - p.starts[i]!) / ps) * 32);
      else list.add(addr, n, p.kinds[i] as PageKind);
      addr += n * ps;
    }
  }

  private async endVma(): Promise<void> {
    const { header, list } = this.vma!;
    this.vma = undefined;
    const order = list.order(`snapshot ${this.id} VMA ${header.index}`);
    const t = this.tenant!;
    const map = buildPageMap(list, order, (n) => {
      if (t.holdsNode(n.sha)) return;
      this.nodes.push(n);
      this.nodeBytes += n.bytes.length;
      // Bounded node packs even for one huge VMA: a reader reads a node pack whole.
      if (this.nodeBytes >= (this.opts.nodePackBytes ?? NODE_PACK_BYTES)) this.uploadNodes();
    });
    if (map) this.repo.recentMaps.put(map, { list, order });
    const pages = { data: 0, zero: 0, file: 0 };
    for (let i = 0; i < list.n; i++) {
      const k = list.kinds[i] === PageKind.Data ? 'data' : list.kinds[i] === PageKind.Zero ? 'zero' : 'file';
      pages[k] += list.counts[i]!;
    }
    this.vmas.push({ ...header, ...(map ? { map } : {}), pages });
  }

  /**
   * Stores the nodes gathered so far in a node pack while the next VMAs arrive (awaited before the
   * manifest): a process with a thousand VMAs writes one object, not a thousand.
   */
  private uploadNodes(): void {
    const nodes = this.nodes;
    this.nodes = [];
    this.nodeBytes = 0;
    if (nodes.length === 0) return;
    const put = this.tenant!.putNodes(nodes).then((w) => {
      this.counts.mapNodesWritten += w.written;
      this.counts.mapBytesWritten += w.bytes;
    });
    put.catch(() => undefined); // observed at commit
    this.nodeUploads.push(put);
  }

  private async commit(digest: string, parentPages: number): Promise<Manifest> {
    const t = this.tenant!;
    const b = this.begin!;
    // The last pack, the nodes not uploaded yet, and one index file for both. Flushes are chained: this
    // settles after every earlier pack, node pack and index upload.
    const nodes = this.nodes;
    this.nodes = [];
    const w = await t.flush(nodes);
    this.counts.mapNodesWritten += w.written;
    this.counts.mapBytesWritten += w.bytes;
    await Promise.all(this.nodeUploads);
    const sum = (k: 'data' | 'zero' | 'file') => this.vmas.reduce((n, v) => n + v.pages[k], 0);
    const m: Manifest = {
      format: 'pagevault.manifest.v1',
      snapshotId: this.id,
      tenant: b.tenant,
      host: b.host,
      pid: b.pid,
      cmdline: b.cmdline,
      pageSize: b.pageSize,
      startTimeMs: b.startTimeMs,
      committedAtMs: Date.now(),
      ...(b.parentId ? { parentId: idToHex(b.parentId) } : {}),
      ...(b.groupId ? { groupId: idToHex(b.groupId) } : {}),
      mode: b.mode === SnapshotMode.Incremental ? 'incremental' : 'full',
      consistency: CONSISTENCY[b.consistency],
      vmas: this.vmas,
      counts: {
        vmas: this.vmas.length,
        dataPages: sum('data'),
        zeroPages: sum('zero'),
        filePages: sum('file'),
        parentPages,
        newPages: this.counts.newPages,
        newBytes: this.newBytes(t),
        ...(this.counts.deltaPages ? { deltaPages: this.counts.deltaPages, basesFetched: this.counts.basesFetched } : {}),
        mapNodesWritten: this.counts.mapNodesWritten,
        mapBytesWritten: this.counts.mapBytesWritten,
      },
      streamDigest: digest,
    };
    // No prune may have run since this snapshot deduplicated against the index.
    if (!this.hold) throw new PvError(ErrorCodes.LOCK_LOST, `snapshot ${this.id} was released before its end`, { retriable: true, details: { snapshot: this.id } });
    this.hold.assertHeld();
    await t.putManifest(m);
    await this.release();
    return m;
  }
}

/** The VMA of `vmas` (sorted by start) holding addr: a binary search, asked per chunk of a thousand-VMA process. */
function vmaAt(vmas: ManifestVma[], addr: number): ManifestVma | undefined {
  let lo = 0;
  let hi = vmas.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const v = vmas[mid]!;
    if (addr < v.start) hi = mid - 1;
    else if (addr >= v.end) lo = mid + 1;
    else return v;
  }
  return undefined;
}
