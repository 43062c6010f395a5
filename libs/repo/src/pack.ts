import { createHash } from 'node:crypto';
import { Compressor } from 'zstd-napi';
import { DCtx } from 'zstd-napi/binding';
import { ErrorCodes, PvError } from '@pagevault/errors';

/**
 * A pack is a sequence of zstd-compressed blobs (up to BLOB_PAGES pages each, so the compressor sees
 * ≥64 KiB inputs) followed by a trailer listing every page it holds, as restic does: the trailer comes
 * last so blobs stream out before the pack is complete.
 *
 *   blob 0 | blob 1 | ... | trailer | u32 trailer length | "PVPK"
 *   trailer: u32 version=1, u32 entries, then per page: hash[32], u32 blob offset, u32 blob length,
 *            u16 slot in blob, u16 pages in blob
 */
export const BLOB_PAGES = 16;
export const PACK_MAGIC = Buffer.from('PVPK', 'latin1');
const ENTRY = 44;

export interface PackEntry {
  hash: Buffer;
  blobOffset: number;
  blobLength: number;
  slot: number;
  blobPages: number;
}

export interface SealedPack {
  sha: string;
  bytes: Buffer;
  entries: PackEntry[];
  pages: number;
}

export class PackBuilder {
  private parts: Buffer[] = [];
  private size = 0;
  private entries: PackEntry[] = [];
  private blob: Buffer;
  private blobHashes: Buffer[] = [];
  private readonly compressor = new Compressor();

  constructor(
    private readonly pageSize: number,
    level: number,
  ) {
    this.compressor.setParameters({ compressionLevel: level });
    this.blob = Buffer.allocUnsafe(BLOB_PAGES * pageSize);
  }

  /** Compressed bytes so far (excluding the blob being filled). */
  get bytes(): number {
    return this.size;
  }

  get pages(): number {
    return this.entries.length + this.blobHashes.length;
  }

  /** Adds one unique page: its hash and its bytes at data[offset, offset + pageSize). */
  add(hash: Buffer, data: Uint8Array, offset: number): void {
    this.blob.set(data.subarray(offset, offset + this.pageSize), this.blobHashes.length * this.pageSize);
    this.blobHashes.push(hash);
    if (this.blobHashes.length === BLOB_PAGES) this.closeBlob();
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
      trailer.writeUInt16LE(e.blobPages, o + 42);
      o += ENTRY;
    }
    trailer.writeUInt32LE(o, o);
    PACK_MAGIC.copy(trailer, o + 4);
    const bytes = Buffer.concat([...this.parts, trailer]);
    const sealed = { sha: createHash('sha256').update(bytes).digest('hex'), bytes, entries: this.entries, pages: this.entries.length };
    this.parts = [];
    this.size = 0;
    this.entries = [];
    return sealed;
  }

  private closeBlob(): void {
    const n = this.blobHashes.length;
    if (n === 0) return;
    const z = this.compressor.compress(this.blob.subarray(0, n * this.pageSize));
    for (let slot = 0; slot < n; slot++) {
      this.entries.push({ hash: this.blobHashes[slot]!, blobOffset: this.size, blobLength: z.length, slot, blobPages: n });
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
      blobPages: pack.readUInt16LE(o + 42),
    };
    if (e.blobOffset + e.blobLength > t0) throw bad(`blob at ${e.blobOffset} runs into the trailer`);
    out.push(e);
  }
  return out;
}

const dctx = new DCtx();

/** Decompresses one blob; a blob that does not inflate to blobPages pages is corrupt. */
export function inflateBlob(z: Uint8Array, blobPages: number, pageSize: number, where: string): Buffer {
  const raw = Buffer.allocUnsafe(blobPages * pageSize);
  inflateBlobInto(z, raw, where);
  return raw;
}

/**
 * Decompresses one blob into `dst`, which must be exactly its inflated size (blob pages × page size):
 * a blob that inflates to anything else, or does not decompress, is corrupt.
 */
export function inflateBlobInto(z: Uint8Array, dst: Uint8Array, where: string): void {
  let n: number;
  try {
    n = dctx.decompress(dst, z);
  } catch (cause) {
    // Also what zstd says when the blob inflates to more than dst holds.
    throw new PvError(ErrorCodes.OBJECT_CORRUPT, `${where}: blob does not decompress to ${dst.length} bytes`, { cause });
  }
  if (n !== dst.length) {
    throw new PvError(ErrorCodes.OBJECT_CORRUPT, `${where}: blob inflates to ${n} bytes, expected ${dst.length}`);
  }
}
