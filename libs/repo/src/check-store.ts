import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { pageHasher } from '@pagevault/hashing';
import { forEachLimited, type ObjectInfo } from '@pagevault/objstore';
import { DeltaBases } from './delta-bases';
import { checkIndexFile, isIndexFileKey, readIndexFile } from './index-file';
import { basename, isHashNamed, keys, namedByHash } from './keys';
import type { Manifest } from './manifest';
import { BLOB_PAGES, DICT_PAD, blobsOf, checkPlainBlob, deltaHeader, inflateBlobInto, readPackTrailer, type PackEntry } from './pack';
import { nodeObjectIntact } from './node-pack';
import { PageFetcher } from './page-fetcher';
import type { PageIndex } from './page-index';
import { PageKind } from './page-list';
import { walkPageMaps } from './page-map';
import type { TenantStore } from './tenant-store';

export interface StoreCheck {
  /** Packs and node packs read whole, and their bytes. */
  objects: number;
  bytes: number;
  /** Distinct data pages the snapshots reach that were checked, each once, against their hashes. */
  pages: number;
  /**
   * Distinct data pages the snapshots reach that could not be checked: in no index file, or in a damaged
   * or missing object (zero when the check is complete, unless a page-map node is what is missing).
   */
  unchecked: number;
  /**
   * Passes over the packs: one reads them all; each further one reads only the packs that hold the delta
   * pages whose bases did not fit in keepBytes before, and those bases, while each pass checks more.
   */
  passes: number;
  /**
   * Delta pages the passes could not check (their bases damaged or missing, or no pass checking more)
   * that were fetched again, with their chains of bases, through the restore path.
   */
  deltasFetched: number;
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

export interface CheckOptions {
  /** Checked pages kept as delta bases, and delta blobs waiting for theirs, at most (default 256 MiB). */
  keepBytes?: number;
}

/** Delta pages fetched (and checked) per PageFetcher call. */
const DELTA_BATCH = 4096;

/** Delta pages inflated and hashed per PageHasher call. */
const DECODE_BATCH = 1024;

/** Kept base pages per slab (4 MiB of 4 KiB pages). */
const SLAB_PAGES = 1024;

/** needed[r]: a page the snapshots reach, or only the base of one (checked so that a delta can be). */
const REACHED = 1;
const BASE_ONLY = 2;

/**
 * restic's `check --read-data` for a whole tenant, reading each pack once, however many snapshots share
 * its pages (reading each snapshot's pages back would read a page once per snapshot that has it):
 *   1. the snapshots' page maps are walked, each node once, and every data page they reach is looked up
 *      in the index (one byte per index entry marks it needed); the index files' lists of delta bases
 *      then mark the bases those pages need, down their chains, counting a base's uses;
 *   2. every pack and node pack is read whole, oldest first, and hashed against its name; every plain
 *      blob of a pack is inflated and each of its pages hashed against the trailer, and the index entries
 *      pointing at a checked page are marked verified; a delta blob is inflated once its bases have been
 *      checked (DeltaChecks), and a base is kept only until its last use, within keepBytes;
 *   3. the delta pages whose bases did not fit are checked by further passes, each over only the packs
 *      that hold them and their bases, for as long as a pass checks some;
 *   4. what is still unchecked (bases damaged or missing) is fetched through the restore path's fetcher,
 *      which names what it cannot read.
 * A needed page left unverified makes the check `incomplete`. Memory: eight bytes per index entry, one
 * string per map node, four packs read at a time, and keepBytes of bases and waiting delta blobs.
 */
export async function checkStore(t: TenantStore, manifests: readonly Manifest[], onProgress?: (done: number, total: number) => void, opts: CheckOptions = {}): Promise<StoreCheck> {
  const idx = t.index;
  const pageSize = t.pageSize;
  const keepBytes = opts.keepBytes ?? 256 << 20;
  const needed = new Uint8Array(idx.size);
  const verified = new Uint8Array(idx.size);
  const out: StoreCheck = { objects: 0, bytes: 0, pages: 0, unchecked: 0, passes: 1, deltasFetched: 0, damaged: [], incomplete: false };

  // 1. The page maps, each node once; then the bases the delta pages among them need.
  const roots = manifests.flatMap((m) => m.vmas.flatMap((v) => (v.map ? [v.map] : [])));
  const unindexed = new Set<string>();
  const run = (_first: number, pages: number, kind: PageKind, b: Buffer, h: number) => {
    if (kind !== PageKind.Data) return;
    for (let i = 0; i < pages; i++) {
      const r = idx.locate(b, h + i * 32);
      if (r < 0) unindexed.add(b.toString('hex', h + i * 32, h + i * 32 + 32));
      else needed[r] = REACHED;
    }
  };
  await walkPageMaps(roots, 8, t.loadNode, run, (e) => {
    if (!isFinding(e)) throw e;
    out.incomplete = true;
  });
  const bases = await readDeltaBases(t);
  const uses = new Uint32Array(idx.size);
  const redo = new Uint8Array(idx.size);
  const reachedDeltas = (keep: (r: number) => boolean) => {
    const rs: number[] = [];
    for (let r = 0; r < needed.length; r++) if (needed[r] === REACHED && idx.depthOf(r) > 0 && keep(r)) rs.push(r);
    return rs;
  };
  countUses(idx, bases, reachedDeltas(() => true), uses, redo);
  for (let r = 0; r < needed.length; r++) if (redo[r] && !needed[r]) needed[r] = BASE_ONLY;

  /** The blobs of a pack this pass wants: every plain one in pass 1, then those holding a base still used. */
  const checkPack = (pack: Buffer, key: string, deltas: DeltaChecks, first: boolean): void => {
    const name = basename(key);
    // The index entry a trailer entry is, if the index points at it (a duplicate elsewhere is not).
    const at = (e: PackEntry) => {
      const r = idx.locate(e.hash);
      return r >= 0 && idx.packOf(r) === name && idx.blobOffsetOf(r) === e.blobOffset && idx.slotOf(r) === e.slot ? r : -1;
    };
    for (const blob of blobsOf(readPackTrailer(pack, key))) {
      const e0 = blob[0]!;
      if (e0.depth > 0) {
        const r = at(e0);
        if (r >= 0 && redo[r]) deltas.add(r, e0.hash, pack.subarray(e0.blobOffset, e0.blobOffset + e0.blobLength), `pack ${key} blob @${e0.blobOffset}`);
        continue;
      }
      const rs = blob.map(at);
      if (!first && !rs.some((r) => r >= 0 && uses[r]! > 0)) continue;
      const raw = checkPlainBlob(pack, key, blob, pageSize);
      if (raw instanceof PvError) {
        if (first) out.damaged.push(raw);
        continue;
      }
      blob.forEach((e, k) => {
        const r = rs[k]!;
        if (r < 0) return;
        verified[r] = 1;
        deltas.checked(r, raw, e.slot * pageSize);
      });
    }
    deltas.drain();
  };

  // 2. Every named object whole, oldest first: a delta blob's bases are older than it.
  const named: ObjectInfo[] = [];
  for (const prefix of [keys.packs(t.tenant), keys.mapNodes(t.tenant)]) {
    for await (const o of t.store.list(prefix)) if (isHashNamed(o.key)) named.push(o);
  }
  named.sort((x, y) => (x.modifiedMs ?? 0) - (y.modifiedMs ?? 0));
  const firstPass = new DeltaChecks(idx, pageSize, uses, verified, keepBytes);
  await readInOrder(t, named.map((o) => o.key), 4, (key, b) => {
    if (!b) return;
    out.bytes += b.length;
    const isPack = key.startsWith(keys.packs(t.tenant));
    if (isPack ? !namedByHash(b, key) : !nodeObjectIntact(b, key)) {
      out.damaged.push(new PvError(ErrorCodes.OBJECT_CORRUPT, `${key}: its bytes do not hash to its name (damaged in the store)`, { details: { key } }));
    } else if (isPack) {
      try {
        checkPack(b, key, firstPass, true);
      } catch (e) {
        if (!isFinding(e)) throw e;
        out.damaged.push(e as PvError);
      }
    }
    onProgress?.(++out.objects, named.length);
  });
  firstPass.finish();

  // 3. The delta pages whose bases did not fit, pass after pass over the packs that hold them and their bases.
  for (let todo = reachedDeltas((r) => !verified[r]); todo.length > 0; ) {
    uses.fill(0);
    redo.fill(0);
    countUses(idx, bases, todo, uses, redo);
    const packs = new Set<string>();
    for (let r = 0; r < idx.size; r++) if (redo[r] || uses[r]! > 0) packs.add(idx.packOf(r));
    const deltas = new DeltaChecks(idx, pageSize, uses, verified, keepBytes);
    await readInOrder(t, named.flatMap((o) => (packs.has(basename(o.key)) ? [o.key] : [])), 4, (key, b) => {
      try {
        if (b && namedByHash(b, key)) checkPack(b, key, deltas, false);
      } catch (e) {
        if (!isFinding(e)) throw e; // named in the first pass
      }
    });
    deltas.finish();
    out.passes++;
    const left = todo.filter((r) => !verified[r]);
    if (left.length === todo.length) break; // no progress: damage or absence, for the fetcher to name
    todo = left;
  }

  // 4. What is left, with its bases, through the restore path (which checks every page it returns).
  const left = reachedDeltas((r) => !verified[r]);
  out.deltasFetched = left.length;
  if (left.length > 0) {
    const fetcher = new PageFetcher(t, pageSize, { cacheBytes: 32 << 20 });
    const page = Buffer.allocUnsafe(Math.min(left.length, DELTA_BATCH) * pageSize);
    for (let i = 0; i < left.length; i += DELTA_BATCH) {
      const n = Math.min(DELTA_BATCH, left.length - i);
      const batch = Buffer.allocUnsafe(n * 32);
      for (let k = 0; k < n; k++) idx.hashOf(left[i + k]!).copy(batch, k * 32);
      try {
        await fetcher.fetch(batch, Int32Array.from({ length: n }, (_, k) => k * 32), n, page, (k) => `page ${batch.toString('hex', k * 32, k * 32 + 32)}`);
        for (let k = 0; k < n; k++) verified[left[i + k]!] = 1;
      } catch (e) {
        if (!isFinding(e)) throw e;
        out.incomplete = true;
      }
    }
  }

  // The fetcher rebuilds the index when a pack it needs is gone: the marks then no longer line up.
  if (t.index !== idx) out.incomplete = true;
  out.unchecked = unindexed.size;
  for (let r = 0; r < needed.length; r++) {
    if (needed[r] !== REACHED) continue;
    if (verified[r]) out.pages++;
    else out.unchecked++;
  }
  if (out.unchecked > 0) out.incomplete = true;
  return out;
}

/**
 * Hands each object to `each` in the order given, `ahead` GETs in flight: oldest first, so that a delta
 * blob's bases come before it whichever GET ends first. Undefined for an object deleted (a prune) since
 * the listing.
 */
async function readInOrder(t: TenantStore, keys: readonly string[], ahead: number, each: (key: string, bytes: Buffer | undefined) => void): Promise<void> {
  const get = (key: string) => {
    const p = t.store.get(key).catch((e: unknown) => {
      if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) return undefined;
      throw e;
    });
    p.catch(() => undefined); // awaited in its turn; a failure before then is not unhandled
    return p;
  };
  const inFlight = keys.slice(0, ahead).map(get);
  for (let i = 0; i < keys.length; i++) {
    const b = await inFlight[i]!;
    if (i + ahead < keys.length) inFlight.push(get(keys[i + ahead]!));
    inFlight[i] = Promise.resolve(undefined); // let the bytes go
    each(keys[i]!, b);
  }
}

/**
 * The delta blobs' bases every index file lists. These only decide which checked pages are kept, and
 * for how long: a delta blob's own header says what it needs. An index file that does not read lists
 * none (its delta pages then fall to the fetcher).
 */
async function readDeltaBases(t: TenantStore): Promise<DeltaBases> {
  const bases = new DeltaBases();
  const files: string[] = [];
  for await (const o of t.store.list(keys.indexes(t.tenant))) if (isIndexFileKey(o.key)) files.push(o.key);
  await forEachLimited(files, 4, async (key) => {
    try {
      readIndexFile(checkIndexFile(await t.store.get(key), key), key, () => undefined, (p, blobOffset, b, at, n) => bases.add(p, blobOffset, b, at, n));
    } catch (e) {
      if (!isFinding(e)) throw e;
    }
  });
  return bases;
}

/**
 * Marks in `redo` the delta pages `deltas` and every delta base down their chains, and counts in `uses`
 * how many of those name each page as a base.
 */
function countUses(idx: PageIndex, bases: DeltaBases, deltas: number[], uses: Uint32Array, redo: Uint8Array): void {
  const todo = deltas.slice();
  for (const r of todo) redo[r] = 1;
  for (let r = todo.pop(); r !== undefined; r = todo.pop()) {
    const found = bases.find(idx.packOf(r), idx.blobOffsetOf(r));
    if (found < 0) continue;
    for (let at = bases.firstAt(found), end = at + bases.count(found) * 32; at < end; at += 32) {
      const b = idx.locate(bases.hashes, at);
      if (b < 0 || uses[b]++ > 0 || redo[b] || idx.depthOf(b) === 0) continue;
      redo[b] = 1;
      todo.push(b);
    }
  }
}

/** A delta page waiting for its bases (index records), with a copy of its blob. */
interface Waiting {
  r: number;
  hash: Buffer;
  z: Buffer;
  bases: number[];
  /** Bases not checked yet; -1 once given up on. */
  missing: number;
  /** Bytes of keepBytes its copy of the blob holds while it waits. */
  held: number;
  where: string;
}

/** What became of an index entry in this check (DeltaChecks.state). */
const enum Met {
  NotYet = 0,
  /** Checked, and kept as a base. */
  Kept = 1,
  /** Checked and not kept, or not checkable: a delta that needs it is fetched in step 3. */
  Gone = 2,
}

/**
 * Checks the delta pages of a store as its packs are read: a delta blob waits until every base it names
 * has been checked (a page of a plain blob, or a delta page checked before it), is then inflated against
 * them, hashed (DECODE_BATCH pages a call) and compared with its hash. Checked pages another delta still
 * needs (uses > 0) are kept until their last use, within keepBytes together with the blobs waiting; a
 * delta whose bases did not fit, or are damaged or missing, is left unverified (for the next pass, and
 * in the end the restore path).
 */
class DeltaChecks {
  private readonly state: Uint8Array;
  /** Kept pages by record: their slots in slabs of SLAB_PAGES pages, made as needed and reused (no allocation a page). */
  private readonly kept = new Map<number, number>();
  private readonly slabs: Buffer[] = [];
  private readonly freeSlots: number[] = [];
  private slots = 0;
  /** Waiting deltas by the record of a base they wait for. */
  private readonly waiting = new Map<number, Waiting[]>();
  private ready: Waiting[] = [];
  private bytes = 0;
  /** A delta blob's zstd dictionary: DICT_PAD zero bytes, then its bases' pages. */
  private readonly dict: Buffer;
  private readonly raw: Buffer;
  private readonly hashes = Buffer.allocUnsafe(DECODE_BATCH * 32);

  constructor(
    private readonly idx: PageIndex,
    private readonly pageSize: number,
    private readonly uses: Uint32Array,
    private readonly verified: Uint8Array,
    private readonly keepBytes: number,
  ) {
    this.state = new Uint8Array(idx.size);
    this.dict = Buffer.alloc(DICT_PAD + BLOB_PAGES * pageSize);
    this.raw = Buffer.allocUnsafe(DECODE_BATCH * pageSize);
  }

  /** Page r has been checked; its bytes are raw[at, at + pageSize). */
  checked(r: number, raw: Buffer, at: number): void {
    if (this.state[r] !== Met.NotYet) return;
    if (this.uses[r]! > 0 && this.bytes + this.pageSize <= this.keepBytes) {
      const slot = this.takeSlot();
      raw.copy(this.slabs[Math.floor(slot / SLAB_PAGES)]!, (slot % SLAB_PAGES) * this.pageSize, at, at + this.pageSize);
      this.kept.set(r, slot);
      this.bytes += this.pageSize;
      this.state[r] = Met.Kept;
    } else this.state[r] = Met.Gone;
    this.wake(r);
  }

  /** The delta blob z of needed page r (hash `hash`), in a pack just read. */
  add(r: number, hash: Buffer, z: Buffer, where: string): void {
    if (this.state[r] !== Met.NotYet) return;
    const w: Waiting = { r, hash, z, bases: [], missing: 0, held: 0, where };
    let h;
    try {
      h = deltaHeader(z, where);
    } catch (e) {
      if (!isPvError(e, ErrorCodes.OBJECT_CORRUPT)) throw e;
    }
    if (!h) return this.giveUp(w); // damaged, or not a delta blob although its trailer says so
    let gone = false;
    for (let k = 0; k < h.bases; k++) {
      const b = this.idx.locate(z, 8 + k * 32);
      if (b < 0) gone = true;
      else w.bases.push(b);
    }
    for (const b of w.bases) {
      if (this.state[b] === Met.Gone) gone = true;
      else if (this.state[b] === Met.NotYet) w.missing++;
    }
    if (gone || (w.missing > 0 && this.bytes + z.length > this.keepBytes)) return this.giveUp(w);
    if (w.missing === 0) return void this.ready.push(w);
    w.z = Buffer.from(z); // the pack it is in is let go
    w.held = z.length;
    this.bytes += w.held;
    for (const b of w.bases) if (this.state[b] === Met.NotYet) (this.waiting.get(b) ?? this.waiting.set(b, []).get(b)!).push(w);
  }

  /** Inflates and checks every delta whose bases are all kept, and those that wakes, in batches. */
  drain(): void {
    const ps = this.pageSize;
    while (this.ready.length > 0) {
      const batch = this.ready.splice(0, DECODE_BATCH);
      const ok = batch.map((w, i) => {
        // A base let go already: the index files listed other bases than the blob's header does.
        if (!w.bases.every((b) => this.kept.has(b))) return false;
        w.bases.forEach((b, k) => {
          const slot = this.kept.get(b)!;
          const at = (slot % SLAB_PAGES) * ps;
          this.slabs[Math.floor(slot / SLAB_PAGES)]!.copy(this.dict, DICT_PAD + k * ps, at, at + ps);
        });
        try {
          inflateBlobInto(w.z, this.raw.subarray(i * ps, (i + 1) * ps), w.where, this.dict.subarray(0, DICT_PAD + w.bases.length * ps));
          return true;
        } catch (e) {
          if (!isPvError(e, ErrorCodes.OBJECT_CORRUPT)) throw e;
          return false;
        }
      });
      pageHasher().hash(this.raw, batch.length, ps, this.hashes);
      batch.forEach((w, i) => {
        if (!ok[i] || w.hash.compare(this.hashes, i * 32, i * 32 + 32) !== 0) return this.giveUp(w);
        for (const b of w.bases) this.release(b);
        this.verified[w.r] = 1;
        this.checked(w.r, this.raw, i * ps);
      });
    }
  }

  /** Gives up on the deltas still waiting: their bases never came (damaged, missing, or not kept). */
  finish(): void {
    for (const list of this.waiting.values()) for (const w of list) this.giveUp(w);
    this.waiting.clear();
  }

  /** A use of base b is over: it is let go after its last. */
  private release(b: number): void {
    if (this.uses[b] === 0 || --this.uses[b] > 0) return;
    const slot = this.kept.get(b);
    if (slot === undefined) return;
    this.kept.delete(b);
    this.freeSlots.push(slot);
    this.bytes -= this.pageSize;
  }

  /** A free slot for a kept page, in a new slab when every one made is taken. */
  private takeSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.slots % SLAB_PAGES === 0) this.slabs.push(Buffer.allocUnsafe(SLAB_PAGES * this.pageSize));
    return this.slots++;
  }

  private wake(r: number): void {
    const list = this.waiting.get(r);
    if (!list) return;
    this.waiting.delete(r);
    for (const w of list) {
      if (w.missing < 0) continue;
      if (this.state[r] !== Met.Kept) this.giveUp(w);
      else if (--w.missing === 0) {
        this.unhold(w);
        this.ready.push(w);
      }
    }
  }

  private giveUp(w: Waiting): void {
    if (w.missing < 0) return;
    w.missing = -1;
    this.unhold(w);
    for (const b of w.bases) this.release(b);
    this.state[w.r] = Met.Gone;
    this.wake(w.r);
  }

  private unhold(w: Waiting): void {
    this.bytes -= w.held;
    w.held = 0;
  }
}

/** Damage or absence in the store, as opposed to the store failing to answer (retriable, or no PvError). */
function isFinding(e: unknown): boolean {
  return isPvError(e) && !e.retriable && (e.code === ErrorCodes.OBJECT_CORRUPT || e.code === ErrorCodes.OBJECT_NOT_FOUND || e.code === ErrorCodes.PAGE_HASH_MISMATCH);
}
