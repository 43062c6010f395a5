import { createHash } from 'node:crypto';
import { Compressor } from 'zstd-napi';
import { CCtx, DCtx, compressBound } from 'zstd-napi/binding';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { pageHasher } from '@pagevault/hashing';

/**
 * A pack is a sequence of zstd-compressed blobs (up to BLOB_PAGES pages each, so the compressor sees
 * ≥64 KiB inputs) followed by a trailer listing every page it holds, as restic does: the trailer comes
 * last so blobs stream out before the pack is complete.
 *
 *   blob 0 | blob 1 | ... | trailer | u32 trailer length | "PVPK"
 *   trailer: u32 version=1, u32 entries, then per page: hash[32], u32 blob offset, u32 blob length,
 *            u16 slot in blob, u8 pages in blob, u8 delta depth
 *
 * A blob is a zstd frame of its pages, or a delta blob: pages compressed with the pages they replaced
 * (their bases, the parent snapshot's pages at the same addresses) as zstd's dictionary, which is where
 * a periodic snapshot's changed pages find most of their bytes. The writer puts one page in a delta
 * blob (see addDelta); the format allows up to BLOB_PAGES:
 *   "PVDB" u8 depth u8 bases u16 0, bases × hash[32], zstd frame (dictionary: 8 zero bytes, then the
 *   bases' pages in that order; the zero bytes keep a page that starts with zstd's dictionary magic
 *   from being taken for a trained dictionary)
 * A delta blob's depth is one more than the deepest blob its bases are in (a plain blob's is 0); a
 * reader decodes the bases first, so a chain is at most MAX_DELTA_DEPTH blobs long.
 */
export const BLOB_PAGES = 16;
export const PACK_MAGIC = Buffer.from('PVPK', 'latin1');
export const DELTA_MAGIC = Buffer.from('PVDB', 'latin1');
/** Longest chain of delta blobs a page may need; a page whose base is this deep is stored whole. */
export const MAX_DELTA_DEPTH = 8;
const ENTRY = 44;
/** Zero bytes before a delta blob's base pages in its zstd dictionary. */
export const DICT_PAD = 8;
const SAMPLE_EVERY = 16;

export interface PackEntry {
  hash: Buffer;
  blobOffset: number;
  blobLength: number;
  slot: number;
  blobPages: number;
  /** 0 for a plain blob, else the delta blob's depth. */
  depth: number;
}

/** The bases of one delta blob: `hashes` holds their 32-byte hashes back to back. */
export interface BlobBases {
  blobOffset: number;
  hashes: Buffer;
}

export interface SealedPack {
  sha: string;
  bytes: Buffer;
  entries: PackEntry[];
  /** The delta blobs' bases, for the index file (prune keeps a live page's bases). */
  bases: BlobBases[];
  pages: number;
}

export class PackBuilder {
  private parts: Buffer[] = [];
  private size = 0;
  private entries: PackEntry[] = [];
  private blob: Buffer;
  private blobHashes: Buffer[] = [];
  private bases: BlobBases[] = [];
  /** A delta blob's zstd dictionary: DICT_PAD zero bytes, then its base page. */
  private readonly dict: Buffer;
  private readonly compressor = new Compressor();
  private readonly cctx = new CCtx();
  private readonly zbuf: Buffer;
  /**
   * What deltas save: every SAMPLE_EVERY-th delta page is also compressed whole, and both sizes are
   * added here, so a compactor can stop looking for bases when pages are rewritten rather than edited.
   */
  readonly deltaSample = { blobs: 0, deltaBytes: 0, plainBytes: 0 };
  private deltaBlobs = 0;

  constructor(
    private readonly pageSize: number,
    private readonly level: number,
  ) {
    this.compressor.setParameters({ compressionLevel: level });
    this.blob = Buffer.allocUnsafe(BLOB_PAGES * pageSize);
    this.dict = Buffer.alloc(DICT_PAD + pageSize);
    this.zbuf = Buffer.allocUnsafe(compressBound(BLOB_PAGES * pageSize));
  }

  /** Compressed bytes so far (excluding the blob being filled). */
  get bytes(): number {
    return this.size;
  }

  get pages(): number {
    return this.entries.length + this.blobHashes.length;
  }

  /**
   * Adds one unique page: its hash and its bytes at data[offset, offset + pageSize). With a base (the
   * page it replaced, stored already: its hash at baseHash[baseHashAt], its bytes at
   * baseData[baseDataAt], the depth of its blob, below MAX_DELTA_DEPTH) the page becomes a delta blob
   * of its own; other pages share plain blobs of up to BLOB_PAGES.
   */
  add(hash: Buffer, data: Uint8Array, offset: number, baseHash?: Uint8Array, baseHashAt = 0, baseData?: Uint8Array, baseDataAt = 0, baseDepth = 0): void {
    const ps = this.pageSize;
    if (baseHash && baseData && baseDepth < MAX_DELTA_DEPTH) {
      this.addDelta(hash, data.subarray(offset, offset + ps), baseData.subarray(baseDataAt, baseDataAt + ps), baseHash.subarray(baseHashAt, baseHashAt + 32), baseDepth + 1);
      return;
    }
    this.blob.set(data.subarray(offset, offset + ps), this.blobHashes.length * ps);
    this.blobHashes.push(hash);
    if (this.blobHashes.length === BLOB_PAGES) this.closeBlob();
  }

  /**
   * One page against its base, alone in its blob: a blob with several bases would make each page depend
   * on all of them, and each of those on theirs (a fan-out of BLOB_PAGES a level down a chain), while a
   * page of its own depends on one page a level.
   */
  private addDelta(hash: Buffer, page: Uint8Array, base: Uint8Array, baseHash: Uint8Array, depth: number): void {
    this.dict.set(base, DICT_PAD);
    const len = this.cctx.compressUsingDict(this.zbuf, page, this.dict, this.level);
    const z = Buffer.allocUnsafe(40 + len);
    DELTA_MAGIC.copy(z, 0);
    z[4] = depth;
    z[5] = 1;
    z.writeUInt16LE(0, 6);
    z.set(baseHash, 8);
    this.zbuf.copy(z, 40, 0, len);
    if (this.deltaBlobs++ % SAMPLE_EVERY === 0) {
      this.deltaSample.blobs++;
      this.deltaSample.deltaBytes += z.length;
      this.deltaSample.plainBytes += this.compressor.compress(page).length;
    }
    this.bases.push({ blobOffset: this.size, hashes: Buffer.from(z.subarray(8, 40)) });
    this.entries.push({ hash, blobOffset: this.size, blobLength: z.length, slot: 0, blobPages: 1, depth });
    this.parts.push(z);
    this.size += z.length;
  }

  seal(): SealedPack | undefined {
    this.closeBlob();
    if (this.entries.length === 0) return undefined;
    const trailer = Buffer.allocUnsafe(8 + this.entries.length * ENTRY + 8);
    trailer.writeUInt32LE(1, 0);
    trailer.writeUInt32LE(this.entries.length, 4);
    let o = 8;
    for (const e of this.entries) {
      e.hash.copy(trailer, o);
      trailer.writeUInt32LE(e.blobOffset, o + 32);
      trailer.writeUInt32LE(e.blobLength, o + 36);
      trailer.writeUInt16LE(e.slot, o + 40);
      trailer[o + 42] = e.blobPages;
      trailer[o + 43] = e.depth;
      o += ENTRY;
    }
    trailer.writeUInt32LE(o, o);
    PACK_MAGIC.copy(trailer, o + 4);
    const bytes = Buffer.concat([...this.parts, trailer]);
    const sealed = { sha: createHash('sha256').update(bytes).digest('hex'), bytes, entries: this.entries, bases: this.bases, pages: this.entries.length };
    this.parts = [];
    this.size = 0;
    this.entries = [];
    this.bases = [];
    return sealed;
  }

  private closeBlob(): void {
    const n = this.blobHashes.length;
    if (n === 0) return;
    const z = this.compressor.compress(this.blob.subarray(0, n * this.pageSize));
    for (let slot = 0; slot < n; slot++) {
      this.entries.push({ hash: this.blobHashes[slot]!, blobOffset: this.size, blobLength: z.length, slot, blobPages: n, depth: 0 });
    }
    this.parts.push(z);
    this.size += z.length;
    this.blobHashes = [];
  }
}

/** Reads a pack's trailer (for `verify` and index rebuilds). */
export function readPackTrailer(pack: Buffer, key: string): PackEntry[] {
  const bad = (why: string) => new PvError(ErrorCodes.OBJECT_CORRUPT, `pack ${key}: ${why}`, { details: { key } });
  if (pack.length < 16 || pack.compare(PACK_MAGIC, 0, 4, pack.length - 4) !== 0) throw bad('no pack trailer');
  const tlen = pack.readUInt32LE(pack.length - 8);
  const t0 = pack.length - 8 - tlen;
  if (t0 < 0 || tlen < 8) throw bad('trailer length out of range');
  const n = pack.readUInt32LE(t0 + 4);
  if (8 + n * ENTRY !== tlen) throw bad('trailer entry count does not match its length');
  const out: PackEntry[] = [];
  for (let i = 0, o = t0 + 8; i < n; i++, o += ENTRY) {
    const e = {
      hash: Buffer.from(pack.subarray(o, o + 32)),
      blobOffset: pack.readUInt32LE(o + 32),
      blobLength: pack.readUInt32LE(o + 36),
      slot: pack.readUInt16LE(o + 40),
      blobPages: pack[o + 42]!,
      depth: pack[o + 43]!,
    };
    if (e.blobOffset + e.blobLength > t0) throw bad(`blob at ${e.blobOffset} runs into the trailer`);
    if (e.blobPages < 1 || e.blobPages > BLOB_PAGES) throw bad(`blob at ${e.blobOffset} says it holds ${e.blobPages} pages (1 to ${BLOB_PAGES})`);
    out.push(e);
  }
  return out;
}

const dctx = new DCtx();

/** A pack's trailer entries blob by blob: a blob's entries are consecutive (PackBuilder writes them so). */
export function* blobsOf(entries: PackEntry[]): Generator<PackEntry[]> {
  for (let i = 0; i < entries.length; ) {
    let j = i + 1;
    while (j < entries.length && entries[j]!.blobOffset === entries[i]!.blobOffset) j++;
    yield entries.slice(i, j);
    i = j;
  }
}

const blobHashes = Buffer.allocUnsafe(32 * BLOB_PAGES);
/** Where checkPlainBlob inflates a blob (grown to the largest page size seen). */
let blobPages = Buffer.alloc(0);

/**
 * Inflates a plain blob of a pack and hashes its pages in one call: its pages (slot s at s × pageSize;
 * a buffer reused by the next call) when each of its entries' pages hashes to the entry's hash, else the
 * damage (OBJECT_CORRUPT naming the pack and blob).
 */
export function checkPlainBlob(pack: Buffer, key: string, blob: PackEntry[], pageSize: number): Buffer | PvError {
  const e0 = blob[0]!;
  const where = `pack ${key} blob @${e0.blobOffset}`;
  if (blobPages.length < BLOB_PAGES * pageSize) blobPages = Buffer.allocUnsafe(BLOB_PAGES * pageSize);
  const raw = blobPages.subarray(0, e0.blobPages * pageSize);
  try {
    inflateBlobInto(pack.subarray(e0.blobOffset, e0.blobOffset + e0.blobLength), raw, where);
    pageHasher().hash(raw, e0.blobPages, pageSize, blobHashes);
  } catch (e) {
    if (!isPvError(e, ErrorCodes.OBJECT_CORRUPT)) throw e;
    return new PvError(ErrorCodes.OBJECT_CORRUPT, `${where} does not inflate: ${e.message}`, { details: { key } });
  }
  const bad = blob.find((e) => e.slot >= e0.blobPages || e.hash.compare(blobHashes, e.slot * 32, e.slot * 32 + 32) !== 0);
  if (!bad) return raw;
  return new PvError(ErrorCodes.OBJECT_CORRUPT, `${where}: its page in slot ${bad.slot} does not hash to ${bad.hash.toString('hex')}, the hash its trailer lists`, { details: { key } });
}

/** Decompresses one blob; a blob that does not inflate to blobPages pages is corrupt. */
export function inflateBlob(z: Uint8Array, blobPages: number, pageSize: number, where: string, dict?: Uint8Array): Buffer {
  const raw = Buffer.allocUnsafe(blobPages * pageSize);
  inflateBlobInto(z, raw, where, dict);
  return raw;
}

/** A delta blob's header: its depth, its bases' hashes at z[8, body), and where its zstd frame starts. */
export interface DeltaHeader {
  depth: number;
  bases: number;
  body: number;
}

/** The header of a delta blob, undefined for a plain one; a delta header that does not fit is corrupt. */
export function deltaHeader(z: Uint8Array, where: string): DeltaHeader | undefined {
  if (z.length < 4 || z[0] !== 0x50 || z[1] !== 0x56 || z[2] !== 0x44 || z[3] !== 0x42) return undefined; // "PVDB"
  const bases = z[5] ?? 0;
  const depth = z[4] ?? 0;
  const body = 8 + bases * 32;
  if (z.length < body || bases === 0 || bases > BLOB_PAGES || depth === 0) {
    throw new PvError(ErrorCodes.OBJECT_CORRUPT, `${where}: delta blob header is malformed (depth ${depth}, ${bases} bases, ${z.length} bytes)`);
  }
  return { depth, bases, body };
}

/** Where a delta blob's bases go before inflating it: `bases` pages after the dictionary's zero bytes. */
export function deltaDictionary(bases: number, pageSize: number): { dict: Buffer; pages: Buffer } {
  const dict = Buffer.alloc(DICT_PAD + bases * pageSize);
  return { dict, pages: dict.subarray(DICT_PAD) };
}

/**
 * Decompresses one blob into `dst`, which must be exactly its inflated size (blob pages × page size):
 * a blob that inflates to anything else, or does not decompress, is corrupt. A delta blob needs its
 * dictionary: DICT_PAD zero bytes, then its bases' pages in header order (deltaDictionary).
 */
export function inflateBlobInto(z: Uint8Array, dst: Uint8Array, where: string, dict?: Uint8Array): void {
  let n: number;
  try {
    const h = deltaHeader(z, where);
    if (h && !dict) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `${where}: a delta blob needs the pages of its ${h.bases} bases`);
    n = h ? dctx.decompressUsingDict(dst, z.subarray(h.body), dict!) : dctx.decompress(dst, z);
  } catch (cause) {
    if (cause instanceof PvError) throw cause;
    // Also what zstd says when the blob inflates to more than dst holds.
    throw new PvError(ErrorCodes.OBJECT_CORRUPT, `${where}: blob does not decompress to ${dst.length} bytes`, { cause });
  }
  if (n !== dst.length) {
    throw new PvError(ErrorCodes.OBJECT_CORRUPT, `${where}: blob inflates to ${n} bytes, expected ${dst.length}`);
  }
}
