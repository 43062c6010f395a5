import { ErrorCodes, PvError, hex } from '@pagevault/errors';

export const PAGE_HASH_BYTES = 32;

/**
 * SHA-256 of every page a snapshot holds as data (sent or same-as-parent), kept by the agent to find the
 * pages that changed by the next snapshot. Compact by construction: one sorted Float64Array of addresses
 * and one Buffer of 32-byte hashes, 40 bytes per page and no JS object per page (1 GiB of data → 10 MiB).
 */
export class PageHashTable {
  constructor(
    readonly pid: number,
    readonly pageSize: number,
    readonly addresses: Float64Array,
    readonly hashes: Buffer,
    /** True when soft-dirty bits were cleared just before this snapshot read its pages. */
    readonly softDirtyCleared = false,
  ) {
    if (hashes.length !== addresses.length * PAGE_HASH_BYTES) {
      throw new PvError(
        ErrorCodes.INVALID_ARGUMENT,
        `${addresses.length} addresses but ${hashes.length} hash bytes`,
      );
    }
  }

  get size(): number {
    return this.addresses.length;
  }

  get byteLength(): number {
    return this.addresses.byteLength + this.hashes.length;
  }

  /** Index of the page at addr, or -1 (binary search). */
  indexOf(addr: number): number {
    const a = this.addresses;
    let lo = 0;
    let hi = a.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const v = a[mid];
      if (v === addr) return mid;
      if (v < addr) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  hashAt(i: number): Buffer {
    return this.hashes.subarray(i * PAGE_HASH_BYTES, (i + 1) * PAGE_HASH_BYTES);
  }

  /**
   * Whether entry i's hash equals the 32 bytes at src[off]. Compared here, not by a native Buffer.compare:
   * it runs once a page of an incremental, and the call cost more than the 32 bytes.
   */
  sameHash(i: number, src: Buffer, off = 0): boolean {
    const h = this.hashes;
    const o = i * PAGE_HASH_BYTES;
    for (let k = 0; k < PAGE_HASH_BYTES; k++) if (h[o + k] !== src[off + k]) return false;
    return true;
  }
}

/**
 * Finds pages in a table in ascending address order in amortised O(1) each: a capture visits addresses
 * in order, so the cursor only moves forward.
 */
export class HashCursor {
  private i = 0;

  constructor(readonly table: PageHashTable) {}

  /** Index of addr in the table, or -1. Calls must come with non-decreasing addresses. */
  find(addr: number): number {
    const a = this.table.addresses;
    while (this.i < a.length && a[this.i] < addr) this.i++;
    return this.i < a.length && a[this.i] === addr ? this.i : -1;
  }
}

/** Builds a PageHashTable from pages added in ascending order; grows by doubling. */
export class PageHashTableBuilder {
  private addrs = new Float64Array(1024);
  private hashes = Buffer.allocUnsafe(1024 * PAGE_HASH_BYTES);
  private n = 0;

  constructor(
    private readonly pid: number,
    private readonly pageSize: number,
  ) {}

  get size(): number {
    return this.n;
  }

  add(addr: number, src: Buffer, off = 0): void {
    if (this.n > 0 && addr <= this.addrs[this.n - 1]) {
      throw new RangeError(`page ${hex(addr)} added after ${hex(this.addrs[this.n - 1])}`);
    }
    if (this.n === this.addrs.length) this.grow();
    this.addrs[this.n] = addr;
    const h = this.hashes;
    const o = this.n * PAGE_HASH_BYTES;
    for (let k = 0; k < PAGE_HASH_BYTES; k++) h[o + k] = src[off + k]!; // once a page: no native call
    this.n++;
  }

  build(softDirtyCleared = false): PageHashTable {
    const addrs = this.addrs.slice(0, this.n);
    const hashes = Buffer.from(this.hashes.subarray(0, this.n * PAGE_HASH_BYTES));
    return new PageHashTable(this.pid, this.pageSize, addrs, hashes, softDirtyCleared);
  }

  private grow(): void {
    const cap = this.addrs.length * 2;
    const a = new Float64Array(cap);
    a.set(this.addrs);
    const h = Buffer.allocUnsafe(cap * PAGE_HASH_BYTES);
    this.hashes.copy(h, 0, 0, this.n * PAGE_HASH_BYTES);
    this.addrs = a;
    this.hashes = h;
  }
}
