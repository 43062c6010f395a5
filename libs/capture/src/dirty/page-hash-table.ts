import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { PAGE_HASH_BYTES, type PageHashKind } from '@pagevault/hashing';

/**
 * The hash of every page a snapshot holds as data (sent or same-as-parent), kept by the agent to find the
 * pages that changed by the next snapshot: XXH3-128 keyed by the agent process's secret (16 bytes; what
 * an agent keeps in memory) or SHA-256 (32 bytes; what a table rebuilt from a stored page map holds).
 * Compact by construction: one sorted Float64Array of addresses and one Buffer of hashes, 24 or 40
 * bytes per page and no JS object per page (1 GiB of data → 6 or 10 MiB).
 */
export class PageHashTable {
  /** Bytes of one page's hash. */
  readonly hashBytes: number;

  constructor(
    readonly pid: number,
    readonly pageSize: number,
    readonly addresses: Float64Array,
    readonly hashes: Buffer,
    /** True when soft-dirty bits were cleared just before this snapshot read its pages. */
    readonly softDirtyCleared = false,
    readonly kind: PageHashKind = 'sha256',
  ) {
    this.hashBytes = PAGE_HASH_BYTES[kind];
    if (hashes.length !== addresses.length * this.hashBytes) {
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
    return this.hashes.subarray(i * this.hashBytes, (i + 1) * this.hashBytes);
  }

  /**
   * Whether entry i's hash equals the hashBytes at src[off]. Compared here, not by a native Buffer.compare:
   * it runs once a page of an incremental, and the call cost more than the bytes.
   */
  sameHash(i: number, src: Buffer, off = 0): boolean {
    const h = this.hashes;
    const w = this.hashBytes;
    const o = i * w;
    for (let k = 0; k < w; k++) if (h[o + k] !== src[off + k]) return false;
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
  private hashes: Buffer;
  private n = 0;
  /** Bytes of one page's hash. */
  readonly hashBytes: number;

  constructor(
    private readonly pid: number,
    private readonly pageSize: number,
    readonly kind: PageHashKind = 'sha256',
  ) {
    this.hashBytes = PAGE_HASH_BYTES[kind];
    this.hashes = Buffer.allocUnsafe(1024 * this.hashBytes);
  }

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
    const w = this.hashBytes;
    const o = this.n * w;
    for (let k = 0; k < w; k++) h[o + k] = src[off + k]!; // once a page: no native call
    this.n++;
  }

  build(softDirtyCleared = false): PageHashTable {
    const addrs = this.addrs.slice(0, this.n);
    const hashes = Buffer.from(this.hashes.subarray(0, this.n * this.hashBytes));
    return new PageHashTable(this.pid, this.pageSize, addrs, hashes, softDirtyCleared, this.kind);
  }

  private grow(): void {
    const cap = this.addrs.length * 2;
    const a = new Float64Array(cap);
    a.set(this.addrs);
    const h = Buffer.allocUnsafe(cap * this.hashBytes);
    this.hashes.copy(h, 0, 0, this.n * this.hashBytes);
    this.addrs = a;
    this.hashes = h;
  }
}
