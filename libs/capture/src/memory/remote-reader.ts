import { closeSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { isAlive, procError } from '../procfs/proc-files';
import { ERRNO, libc } from './libc';
import { fsErrno, memoryAccessError } from './errno-error';
import { IovecPair } from './iovec';
import { PAGE_OK, PAGE_PENDING } from './page-status';

/** Somewhere else to read a batch into: page k at buf[k * pageSize]; addr is buf's address. */
export interface ReadTarget {
  buf: Buffer;
  addr: number;
}

export interface RemoteReaderOptions {
  /** Read through /proc/PID/mem instead of process_vm_readv. */
  useProcMem?: boolean;
}

/**
 * Copies pages of another process into one reused buffer: page k of a batch lands at `buf[k * pageSize]`
 * (or into a ReadTarget the caller gives, such as the frame the pages will travel in).
 * process_vm_readv with up to IOV_MAX coalesced runs per call; /proc/PID/mem (one pread per run) when
 * process_vm_readv is unavailable, forced, or the VMA is not readable (only FOLL_FORCE reads it).
 * Memory: the buffer (capacity pages) and two iovec arrays of IOV_MAX entries.
 */
export class RemoteReader {
  readonly buf: Buffer;
  private readonly bufAddr: number;
  private readonly iov = new IovecPair();
  private memFd = -1;
  private procMem: boolean;
  bytesRead = 0;
  calls = 0;
  readMs = 0;

  constructor(
    readonly pid: number,
    readonly pageSize: number,
    readonly capacity: number,
    opts: RemoteReaderOptions = {},
  ) {
    this.buf = Buffer.allocUnsafeSlow(capacity * pageSize);
    const c = libc();
    this.procMem = opts.useProcMem === true || c === null;
    this.bufAddr = c ? c.addressOf(this.buf) : 0;
  }

  /**
   * Reads the pending pages of batch entries [from, to) (ascending addresses, at most `capacity` entries
   * from 0), marking them PAGE_OK. Stops at the first page that cannot be read and returns its index
   * (still pending), or returns `to` when all were read. Throws for a gone or forbidden process.
   */
  readPending(
    addrs: Float64Array,
    status: Uint8Array,
    from: number,
    to: number,
    forceProcMem = false,
    into?: ReadTarget,
  ): number {
    if (to > this.capacity) throw new RangeError(`batch of ${to} pages > reader capacity ${this.capacity}`);
    if (into && into.buf.length < to * this.pageSize) throw new RangeError(`batch of ${to} pages > target of ${into.buf.length} bytes`);
    const t0 = performance.now();
    const target = into ?? { buf: this.buf, addr: this.bufAddr };
    try {
      return this.procMem || forceProcMem
        ? this.viaProcMem(addrs, status, from, to, target.buf)
        : this.viaReadv(addrs, status, from, to, target);
    } finally {
      this.readMs += performance.now() - t0;
    }
  }

  private viaReadv(addrs: Float64Array, status: Uint8Array, from: number, to: number, target: ReadTarget): number {
    const c = libc()!;
    const ps = this.pageSize;
    let i = from;
    while (i < to) {
      const { runs, next } = this.iov.fill(addrs, status, i, to, ps, target.addr);
      if (runs === 0) return to;
      this.calls++;
      const n = c.processVmReadv(this.pid, this.iov.local, runs, this.iov.remote, runs, 0);
      if (n < 0) {
        const errno = c.errno();
        if (errno === ERRNO.EFAULT) return this.iov.first(0);
        if (errno === ERRNO.ENOSYS) {
          this.procMem = true;
          return this.viaProcMem(addrs, status, i, to, target.buf);
        }
        throw memoryAccessError(errno, this.pid, 'read', addrs[this.iov.first(0)]);
      }
      this.bytesRead += n;
      const failed = this.iov.markDone(status, n, ps);
      if (failed >= 0) return failed;
      i = next;
    }
    return to;
  }

  private viaProcMem(addrs: Float64Array, status: Uint8Array, from: number, to: number, buf: Buffer): number {
    const ps = this.pageSize;
    if (this.memFd < 0) {
      try {
        this.memFd = openSync(`/proc/${this.pid}/mem`, 'r');
      } catch (e) {
        throw procError(e, this.pid, `/proc/${this.pid}/mem`, true);
      }
    }
    let i = from;
    while (i < to) {
      if (status[i] !== PAGE_PENDING) {
        i++;
        continue;
      }
      let n = 1;
      while (i + n < to && status[i + n] === PAGE_PENDING && addrs[i + n] === addrs[i + n - 1] + ps) n++;
      let got: number;
      this.calls++;
      try {
        got = readSync(this.memFd, buf, i * ps, n * ps, addrs[i]);
      } catch (e) {
        const errno = fsErrno(e);
        if (errno === ERRNO.EIO || errno === ERRNO.EFAULT) return i;
        throw memoryAccessError(errno, this.pid, 'read', addrs[i], e);
      }
      if (got === 0 && !isAlive(this.pid)) {
        throw new PvError(
          ErrorCodes.PROCESS_EXITED,
          `process ${this.pid} exited during the read at ${hex(addrs[i])}`,
          {
            details: { pid: this.pid, address: hex(addrs[i]) },
          },
        );
      }
      this.bytesRead += got;
      const whole = Math.floor(got / ps);
      status.fill(PAGE_OK, i, i + whole);
      if (whole < n) return i + whole;
      i += n;
    }
    return to;
  }

  close(): void {
    if (this.memFd >= 0) closeSync(this.memFd);
    this.memFd = -1;
  }
}
