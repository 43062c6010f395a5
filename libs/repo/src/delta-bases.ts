/**
 * The delta blobs' bases the index files list, by blob: their hashes back to back in one buffer, a blob
 * found by a number (pack number × 2^32 + blob offset). Delta blobs hold one page each, so this is per
 * delta page: no string or buffer object each.
 */
export class DeltaBases {
  hashes = Buffer.allocUnsafe(1 << 16);
  private used = 0;
  private readonly packNo = new Map<string, number>();
  /** Blob → (index of its first hash) × 2^16 + its base count. */
  private readonly byBlob = new Map<number, number>();

  get size(): number {
    return this.byBlob.size;
  }

  add(pack: string, blobOffset: number, b: Buffer, at: number, n: number): void {
    if (this.used + n * 32 > this.hashes.length) {
      const grown = Buffer.allocUnsafe(Math.max(this.hashes.length * 2, this.used + n * 32));
      this.hashes.copy(grown, 0, 0, this.used);
      this.hashes = grown;
    }
    this.byBlob.set(this.key(pack, blobOffset), (this.used / 32) * 2 ** 16 + n);
    this.used += b.copy(this.hashes, this.used, at, at + n * 32);
  }

  /** The blob's entry for firstAt and count, or -1. */
  find(pack: string, blobOffset: number): number {
    return this.byBlob.get(this.key(pack, blobOffset)) ?? -1;
  }

  firstAt(entry: number): number {
    return Math.floor(entry / 2 ** 16) * 32;
  }

  count(entry: number): number {
    return entry % 2 ** 16;
  }

  private key(pack: string, blobOffset: number): number {
    let p = this.packNo.get(pack);
    if (p === undefined) this.packNo.set(pack, (p = this.packNo.size));
    return p * 2 ** 32 + blobOffset;
  }
}
