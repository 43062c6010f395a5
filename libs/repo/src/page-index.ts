/**
 * The in-memory page index of one tenant: page hash -> where its compressed blob lives. Open addressing
 * over typed arrays: one 48-byte record per page (32-byte hash, pack number, blob offset, blob length,
 * u16 slot in blob, u8 pages in blob, u8 delta depth) plus an Int32Array slot table kept at most half full — about 64 bytes
 * per page, no JS object or string per page. Pack ids are interned once in `packs`.
 */
export interface PageLocation {
  pack: string;
  blobOffset: number;
  blobLength: number;
  slot: number;
  blobPages: number;
  /** Depth of a delta blob (pack.ts), 0 or absent for a plain one. */
  depth?: number;
}

const REC = 48;

export class PageIndex {
  private recs: Buffer;
  private table: Int32Array;
  private n = 0;
  readonly packs: string[] = [];
  private readonly packNo = new Map<string, number>();

  constructor(capacity = 1024) {
    this.recs = Buffer.alloc(capacity * REC);
    this.table = new Int32Array(capacity * 2).fill(-1);
  }

  get size(): number {
    return this.n;
  }

  /** Bytes held by the index structures (for the memory figure in docs/storage.md). */
  get bytes(): number {
    return this.recs.length + this.table.byteLength;
  }

  has(hash: Uint8Array, hashOffset = 0): boolean {
    return this.find(hash, hashOffset) >= 0;
  }

  get(hash: Uint8Array, hashOffset = 0): PageLocation | undefined {
    const r = this.find(hash, hashOffset);
    if (r < 0) return undefined;
    const o = r * REC;
    return {
      pack: this.packs[this.recs.readUInt32LE(o + 32)]!,
      blobOffset: this.recs.readUInt32LE(o + 36),
      blobLength: this.recs.readUInt32LE(o + 40),
      slot: this.recs.readUInt16LE(o + 44),
      blobPages: this.recs[o + 46]!,
      depth: this.recs[o + 47]!,
    };
  }

  /**
   * The record number of a page (or -1), for the accessors below: a lookup that allocates nothing, for
   * callers that look up every page of a restore. Valid while this index lives.
   */
  locate(hash: Uint8Array, hashOffset = 0): number {
    return this.find(hash, hashOffset);
  }

  packOf(r: number): string {
    return this.packs[this.recs.readUInt32LE(r * REC + 32)]!;
  }
  blobOffsetOf(r: number): number {
    return this.recs.readUInt32LE(r * REC + 36);
  }
  blobLengthOf(r: number): number {
    return this.recs.readUInt32LE(r * REC + 40);
  }
  slotOf(r: number): number {
    return this.recs.readUInt16LE(r * REC + 44);
  }
  blobPagesOf(r: number): number {
    return this.recs[r * REC + 46]!;
  }
  depthOf(r: number): number {
    return this.recs[r * REC + 47]!;
  }
  /** A record's hash, as a view into the index (copy it to keep it). */
  hashOf(r: number): Buffer {
    return this.recs.subarray(r * REC, r * REC + 32);
  }

  /** Every hash held, in insertion order, as views into the index (copy one to keep it). */
  *hashes(): Generator<Buffer> {
    for (let r = 0; r < this.n; r++) yield this.recs.subarray(r * REC, r * REC + 32);
  }

  /** Adds a page; an existing entry wins (first stored copy). True when it was added (it was not held). */
  add(hash: Uint8Array, hashOffset: number, loc: PageLocation): boolean {
    if (this.find(hash, hashOffset) >= 0) return false;
    if ((this.n + 1) * 2 > this.table.length) this.grow();
    let p = this.packNo.get(loc.pack);
    if (p === undefined) {
      p = this.packs.push(loc.pack) - 1;
      this.packNo.set(loc.pack, p);
    }
    const o = this.n * REC;
    for (let k = 0; k < 32; k++) this.recs[o + k] = hash[hashOffset + k]!; // no view object a page
    this.recs.writeUInt32LE(p, o + 32);
    this.recs.writeUInt32LE(loc.blobOffset, o + 36);
    this.recs.writeUInt32LE(loc.blobLength, o + 40);
    this.recs.writeUInt16LE(loc.slot, o + 44);
    this.recs[o + 46] = loc.blobPages;
    this.recs[o + 47] = loc.depth ?? 0;
    this.insertSlot(this.n++);
    return true;
  }

  private find(hash: Uint8Array, off: number): number {
    const mask = this.table.length - 1;
    const recs = this.recs;
    let i = bucket(hash, off) & mask;
    for (;;) {
      const r = this.table[i]!;
      if (r < 0) return -1;
      // Compared here, a byte at a time: a native Buffer.compare per probe cost more than the bytes
      // (SHA-256 output differs within its first bytes unless it is the same hash).
      const o = r * REC;
      let k = 0;
      while (k < 32 && recs[o + k] === hash[off + k]) k++;
      if (k === 32) return r;
      i = (i + 1) & mask;
    }
  }

  private insertSlot(r: number): void {
    const mask = this.table.length - 1;
    let i = bucket(this.recs, r * REC) & mask;
    while (this.table[i]! >= 0) i = (i + 1) & mask;
    this.table[i] = r;
  }

  private grow(): void {
    const recs = Buffer.alloc(this.recs.length * 2);
    this.recs.copy(recs);
    this.recs = recs;
    this.table = new Int32Array(this.table.length * 2).fill(-1);
    for (let r = 0; r < this.n; r++) this.insertSlot(r);
  }
}

/** The hash is SHA-256 output: its first four bytes are already uniform. */
function bucket(h: Uint8Array, off: number): number {
  return (h[off]! | (h[off + 1]! << 8) | (h[off + 2]! << 16) | (h[off + 3]! << 24)) >>> 0;
}
