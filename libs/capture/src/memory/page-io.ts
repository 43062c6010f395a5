import { closeSync, openSync, writeSync } from 'node:fs';
import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { procError } from '../procfs/proc-files';
import { fsErrno, memoryAccessError } from './errno-error';
import { IovecPair } from './iovec';
import { ERRNO, libc, systemPageSize } from './libc';
import { RemoteReader } from './remote-reader';

export interface PageIoOptions {
  pageSize?: number;
  /** Use /proc/PID/mem instead of process_vm_readv/writev. */
  useProcMem?: boolean;
}

function toF64(addrs: ArrayLike<number>): Float64Array {
  return addrs instanceof Float64Array ? addrs : Float64Array.from(addrs);
}

/**
 * Reads whole pages of a live process, back to back in a new Buffer (page k at k * pageSize). For tests
 * and verification: it allocates the result; captureSnapshot reads through one reused buffer instead.
 * Throws PV_READ_FAILED naming the first page that cannot be read.
 */
export function readPages(pid: number, addrs: ArrayLike<number>, opts: PageIoOptions = {}): Buffer {
  const ps = opts.pageSize ?? systemPageSize();
  const a = toF64(addrs);
  const reader = new RemoteReader(pid, ps, Math.max(1, a.length), { useProcMem: opts.useProcMem === true });
  try {
    const status = new Uint8Array(a.length);
    const failed = reader.readPending(a, status, 0, a.length);
    if (failed < a.length) {
      throw new PvError(ErrorCodes.READ_FAILED, `cannot read page ${hex(a[failed])} of process ${pid}`, {
        details: { pid, address: hex(a[failed]) },
      });
    }
    return reader.buf;
  } finally {
    reader.close();
  }
}

/**
 * Writes whole pages into a live process (the restorer's last step): data holds addrs.length pages back
 * to back. Batched like reads: up to IOV_MAX coalesced runs per process_vm_writev, never a call per page.
 */
export function writePages(
  pid: number,
  addrs: ArrayLike<number>,
  data: Buffer,
  opts: PageIoOptions = {},
): void {
  const ps = opts.pageSize ?? systemPageSize();
  const a = toF64(addrs);
  if (data.length < a.length * ps) {
    throw new PvError(
      ErrorCodes.INVALID_ARGUMENT,
      `writePages: ${a.length} pages need ${a.length * ps} bytes, got ${data.length}`,
    );
  }
  const c = libc();
  if (c === null || opts.useProcMem) return writeViaProcMem(pid, a, data, ps);
  const status = new Uint8Array(a.length);
  const iov = new IovecPair();
  const base = c.addressOf(data);
  let i = 0;
  while (i < a.length) {
    const { runs, next } = iov.fill(a, status, i, a.length, ps, base);
    if (runs === 0) return;
    const n = c.processVmWritev(pid, iov.local, runs, iov.remote, runs, 0);
    if (n < 0) {
      const errno = c.errno();
      if (errno === ERRNO.ENOSYS) return writeViaProcMem(pid, a.subarray(i), data.subarray(i * ps), ps);
      if (errno === ERRNO.EFAULT) throw unwritable(pid, a[iov.first(0)]);
      throw memoryAccessError(errno, pid, 'write', a[iov.first(0)]);
    }
    const short = iov.markDone(status, n, ps);
    // A short write stops at a page that cannot be written; the next call starts there and fails on it.
    i = short >= 0 ? short : next;
    if (short >= 0 && n === 0) throw unwritable(pid, a[short]);
  }
}

function unwritable(pid: number, addr: number): PvError {
  return new PvError(
    ErrorCodes.READ_FAILED,
    `cannot write page ${hex(addr)} of process ${pid} (not mapped writable)`,
    {
      details: { pid, address: hex(addr), op: 'write' },
    },
  );
}

function writeViaProcMem(pid: number, a: Float64Array, data: Buffer, ps: number): void {
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/mem`, 'r+');
  } catch (e) {
    throw procError(e, pid, `/proc/${pid}/mem`, true);
  }
  try {
    let i = 0;
    while (i < a.length) {
      let n = 1;
      while (i + n < a.length && a[i + n] === a[i + n - 1] + ps) n++;
      let done: number;
      try {
        done = writeSync(fd, data, i * ps, n * ps, a[i]);
      } catch (e) {
        const errno = fsErrno(e);
        if (errno === ERRNO.EIO || errno === ERRNO.EFAULT) throw unwritable(pid, a[i]);
        throw memoryAccessError(errno, pid, 'write', a[i], e);
      }
      if (done < n * ps) throw unwritable(pid, a[i + Math.floor(done / ps)]);
      i += n;
    }
  } finally {
    closeSync(fd);
  }
}
