import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import type { PageRun } from '@pagevault/format';
import { chunkRuns, isZero, splitRun } from './page-runs';
import type { Access, RemoteMemory, Segment } from './remote-memory';

interface Counters {
  bytesWritten: number;
  verifiedPages: number;
  zeroPagesWritten: number;
}

/**
 * Batches of pages into a target process, each written with one call and then read back with one call
 * and compared. A batch is at most `batchPages` pages (so at most that many iovecs).
 */
export class LivePageWriter {
  private readonly zeros: Buffer;

  constructor(
    private readonly mem: RemoteMemory,
    private readonly pageSize: number,
    private readonly batchPages: number,
    private readonly counters: Counters,
  ) {
    this.zeros = Buffer.alloc(batchPages * pageSize);
  }

  /** A page chunk: ascending addresses, pages back to back in `data`. */
  pages(access: Access, addresses: Float64Array, data: Buffer): void {
    const ps = this.pageSize;
    for (let i = 0; i < addresses.length; i += this.batchPages) {
      const n = Math.min(this.batchPages, addresses.length - i);
      const segs = chunkRuns(addresses.subarray(i, i + n), ps).map((r) => ({ addr: r.addr, len: r.pages * ps }));
      this.writeVerified(access, segs, data.subarray(i * ps, (i + n) * ps));
    }
  }

  /** `pages` consecutive pages from `addr` (at most batchPages). */
  contiguous(access: Access, addr: number, data: Buffer, pages: number): void {
    this.writeVerified(access, [{ addr, len: pages * this.pageSize }], data.subarray(0, pages * this.pageSize));
  }

  /** Zeroes the pages of a zero run that the target does not already have zero. */
  zeroRun(access: Access, run: PageRun): void {
    const ps = this.pageSize;
    for (const piece of splitRun(run.start, run.pages, ps, this.batchPages)) {
      const have = this.mem.read(access, [{ addr: piece.start, len: piece.pages * ps }], piece.pages * ps);
      const dirty: Segment[] = [];
      let bytes = 0;
      for (let k = 0; k < piece.pages; k++) {
        if (isZero(have, k * ps, (k + 1) * ps)) continue;
        const addr = piece.start + k * ps;
        const last = dirty[dirty.length - 1];
        if (last && last.addr + last.len === addr) last.len += ps;
        else dirty.push({ addr, len: ps });
        bytes += ps;
      }
      if (bytes === 0) continue;
      this.writeVerified(access, dirty, this.zeros.subarray(0, bytes));
      this.counters.zeroPagesWritten += bytes / ps;
    }
  }

  private writeVerified(access: Access, segs: Segment[], data: Buffer): void {
    this.mem.write(access, segs, data);
    this.counters.bytesWritten += data.length;
    const back = this.mem.read(access, segs, data.length);
    if (!back.equals(data)) this.mismatch(segs, data, back);
    this.counters.verifiedPages += data.length / this.pageSize;
  }

  private mismatch(segs: Segment[], data: Buffer, back: Buffer): never {
    const ps = this.pageSize;
    let off = 0;
    for (const s of segs) {
      for (let p = 0; p < s.len; p += ps) {
        if (data.compare(back, off + p, off + p + ps, off + p, off + p + ps) !== 0) {
          const addr = hex(s.addr + p);
          throw new PvError(ErrorCodes.PAGE_HASH_MISMATCH, `process ${this.mem.pid}: page ${addr} reads back different from what was written`, {
            details: { pid: this.mem.pid, address: addr },
          });
        }
      }
      off += s.len;
    }
    throw new PvError(ErrorCodes.PAGE_HASH_MISMATCH, `process ${this.mem.pid}: a batch reads back different from what was written`);
  }
}
