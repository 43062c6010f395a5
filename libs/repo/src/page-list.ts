import { ErrorCodes, PvError, hex } from '@pagevault/errors';

export enum PageKind {
  Data = 1,
  Zero = 2,
  File = 3,
}

/** Runs a list has room for before it grows: 8 float64s are V8's largest typed array kept on its heap. */
const INITIAL_RUNS = 8;

/**
 * The pages of one VMA as runs: start address, page count, kind and, for data runs, one 32-byte hash per
 * page. Growable typed arrays, no object per page; runs may be appended in any order and are sorted once.
 * They start small enough for V8 to keep them on its heap (64 bytes or less), without a backing store of
 * their own: most VMAs have a run or two, and a process of 20,000 VMAs spent ~0.2 s creating 80,000
 * backing stores of 64 entries, and more collecting them.
 */
export class PageList {
  starts = new Float64Array(INITIAL_RUNS);
  counts = new Uint32Array(INITIAL_RUNS);
  kinds = new Uint8Array(INITIAL_RUNS);
  hashAt = new Int32Array(INITIAL_RUNS);
  hashes = Buffer.allocUnsafe(INITIAL_RUNS * 32);
  n = 0;
  private hashBytes = 0;
  pages = 0;

  constructor(readonly pageSize: number) {}

  /** Appends a run; for data runs `hashes[hashOffset...]` holds `count` hashes. */
  add(start: number, count: number, kind: PageKind, hashes?: Uint8Array, hashOffset = 0): void {
    if (this.n === this.starts.length) this.growRuns();
    const i = this.n++;
    this.starts[i] = start;
    this.counts[i] = count;
    this.kinds[i] = kind;
    this.pages += count;
    if (kind === PageKind.Data) {
      const need = this.hashBytes + count * 32;
      if (need > this.hashes.length) {
        const h = Buffer.allocUnsafe(Math.max(need, this.hashes.length * 2));
        this.hashes.copy(h, 0, 0, this.hashBytes);
        this.hashes = h;
      }
      this.hashes.set(hashes!.subarray(hashOffset, hashOffset + count * 32), this.hashBytes);
      this.hashAt[i] = this.hashBytes;
      this.hashBytes = need;
    } else {
      this.hashAt[i] = -1;
    }
  }

  /** Run indices in address order; a page claimed by two runs is an error naming it. */
  order(where: string): Int32Array {
    const idx = Int32Array.from({ length: this.n }, (_, i) => i);
    idx.sort((a, b) => this.starts[a]! - this.starts[b]!);
    let end = -1;
    for (const i of idx) {
      if (this.starts[i]! < end) {
        throw new PvError(ErrorCodes.STREAM_ADDRESS, `${where}: page ${hex(this.starts[i]!)} appears twice`, { details: { address: hex(this.starts[i]!) } });
      }
      end = this.starts[i]! + this.counts[i]! * this.pageSize;
    }
    return idx;
  }

  /** The offset in `hashes` of the hash of the data page at addr, or -1 (no page, or not data): allocates nothing. */
  dataHashAt(addr: number, order: Int32Array): number {
    const i = this.runAt(addr, order);
    return i >= 0 && this.kinds[i] === PageKind.Data ? this.hashAt[i]! + ((addr - this.starts[i]!) / this.pageSize) * 32 : -1;
  }

  /** Address just past run i. */
  runEnd(i: number): number {
    return this.starts[i]! + this.counts[i]! * this.pageSize;
  }

  /** Finds the page at addr: its kind and, for data, the offset of its hash in `hashes`. */
  lookup(addr: number, order: Int32Array): { kind: PageKind; hashOffset: number } | undefined {
    const i = this.runAt(addr, order);
    if (i < 0) return undefined;
    const k = this.kinds[i] as PageKind;
    return { kind: k, hashOffset: k === PageKind.Data ? this.hashAt[i]! + ((addr - this.starts[i]!) / this.pageSize) * 32 : -1 };
  }

  /** The run holding addr (binary search over `order`), or -1. */
  runAt(addr: number, order: Int32Array): number {
    let lo = 0;
    let hi = order.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const i = order[mid]!;
      const s = this.starts[i]!;
      if (addr < s) hi = mid - 1;
      else if (addr >= s + this.counts[i]! * this.pageSize) lo = mid + 1;
      else return i;
    }
    return -1;
  }

  private growRuns(): void {
    const m = this.starts.length * 2;
    const grow = <T extends Float64Array | Uint32Array | Uint8Array | Int32Array>(a: T, b: T): T => (b.set(a), b);
    this.starts = grow(this.starts, new Float64Array(m));
    this.counts = grow(this.counts, new Uint32Array(m));
    this.kinds = grow(this.kinds, new Uint8Array(m));
    this.hashAt = grow(this.hashAt, new Int32Array(m));
  }
}
