import { PAGE_OK, PAGE_PENDING } from './page-status';

/** Linux's UIO_MAXIOV: the most iovecs one process_vm_readv/writev accepts. */
export const IOV_MAX = 1024;

const TWO32 = 2 ** 32;

/**
 * The local and remote `struct iovec` arrays of one process_vm_readv/writev call, reused for every call.
 * Contiguous pending pages of a batch become one remote iovec; its local twin points at the same batch
 * slots in the local buffer, so page k always lands at k * pageSize whatever was skipped.
 */
export class IovecPair {
  readonly local = Buffer.alloc(IOV_MAX * 16);
  readonly remote = Buffer.alloc(IOV_MAX * 16);
  private readonly l32 = new Uint32Array(this.local.buffer, this.local.byteOffset, IOV_MAX * 4);
  private readonly r32 = new Uint32Array(this.remote.buffer, this.remote.byteOffset, IOV_MAX * 4);
  private readonly runFirst = new Int32Array(IOV_MAX);
  private readonly runPages = new Int32Array(IOV_MAX);
  private runs = 0;

  /**
   * Fills up to IOV_MAX runs from the pending entries of [from, to). `localBase` is the address of slot 0.
   * Returns the number of runs and the index after the last entry covered.
   */
  fill(
    addrs: Float64Array,
    status: Uint8Array,
    from: number,
    to: number,
    ps: number,
    localBase: number,
  ): { runs: number; next: number } {
    let j = from;
    let r = 0;
    while (j < to && r < IOV_MAX) {
      if (status[j] !== PAGE_PENDING) {
        j++;
        continue;
      }
      let n = 1;
      while (j + n < to && status[j + n] === PAGE_PENDING && addrs[j + n] === addrs[j + n - 1] + ps) n++;
      put(this.l32, r, localBase + j * ps, n * ps);
      put(this.r32, r, addrs[j], n * ps);
      this.runFirst[r] = j;
      this.runPages[r] = n;
      r++;
      j += n;
    }
    this.runs = r;
    return { runs: r, next: j };
  }

  /** Batch index of the first page of run r of the last fill. */
  first(r: number): number {
    return this.runFirst[r];
  }

  /**
   * Marks the pages covered by `bytes` transferred bytes as done. Returns the index of the first page
   * not transferred when the call was short, else -1.
   */
  markDone(status: Uint8Array, bytes: number, ps: number): number {
    let left = bytes;
    for (let r = 0; r < this.runs; r++) {
      const f = this.runFirst[r];
      const n = this.runPages[r];
      const whole = Math.min(n, Math.floor(left / ps));
      status.fill(PAGE_OK, f, f + whole);
      if (whole < n) return f + whole;
      left -= n * ps;
    }
    return -1;
  }
}

function put(w: Uint32Array, i: number, base: number, len: number): void {
  const hi = Math.floor(base / TWO32);
  w[i * 4] = base - hi * TWO32;
  w[i * 4 + 1] = hi;
  w[i * 4 + 2] = len;
  w[i * 4 + 3] = 0;
}
