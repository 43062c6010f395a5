import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import koffi from 'koffi';
import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { writeU64 } from './u64';

/** A range of the target's address space; a batch's ranges take consecutive bytes of one local buffer. */
export interface Segment {
  addr: number;
  len: number;
}

/** How a batch reaches the target: process_vm_writev/readv, or /proc/PID/mem for mappings without rw. */
export type Access = 'vm' | 'mem';

/** Linux caps an iovec array at IOV_MAX = 1024 entries. */
export const IOV_MAX = 1024;
const IOVEC_BYTES = 16;

type VmCall = (pid: number, local: unknown, liovcnt: number, remote: unknown, riovcnt: number, flags: number) => number | bigint;
let libc: { writev: VmCall; readv: VmCall } | undefined;

function vmCalls(): { writev: VmCall; readv: VmCall } {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    const sig = (name: string) => `intptr_t ${name}(int pid, void *local, uintptr_t liovcnt, void *remote, uintptr_t riovcnt, uintptr_t flags)`;
    libc = { writev: lib.func(sig('process_vm_writev')) as VmCall, readv: lib.func(sig('process_vm_readv')) as VmCall };
  }
  return libc;
}

/**
 * Reads and writes another process's memory in batches: one process_vm_writev/readv per batch of up to
 * `capacity` bytes in up to IOV_MAX ranges (one local iovec over a native buffer, one remote iovec per
 * range), or one pwrite/pread of /proc/PID/mem per range where the target's mapping is not read-write
 * (process_vm_writev honours page protections; /proc/PID/mem writes like a debugger does, copy-on-write).
 * Memory: two native buffers of `capacity` bytes (pages out, pages back) and the iovec arrays; native
 * memory so its address is stable while the kernel copies.
 */
export class RemoteMemory {
  private readonly out: { ptr: unknown; buf: Buffer };
  private readonly back: { ptr: unknown; buf: Buffer };
  private readonly liov: { ptr: unknown; buf: Buffer };
  private readonly riov: { ptr: unknown; buf: Buffer };
  private memFd: number | undefined;
  syscalls = 0;

  constructor(
    readonly pid: number,
    readonly capacity: number,
    /** Called once, before the first byte is written into the target. */
    private beforeFirstWrite?: () => void,
  ) {
    this.out = native(capacity);
    this.back = native(capacity);
    this.liov = native(IOVEC_BYTES);
    this.riov = native(IOV_MAX * IOVEC_BYTES);
  }

  /** Writes `data` (the segments' bytes back to back, at most `capacity`) into the target. */
  write(access: Access, segs: Segment[], data: Buffer): void {
    if (this.beforeFirstWrite) {
      this.beforeFirstWrite();
      this.beforeFirstWrite = undefined;
    }
    if (access === 'mem') return this.viaMem(segs, data, 'write');
    data.copy(this.out.buf, 0, 0, data.length);
    this.vm('write', segs, this.out, data.length);
  }

  /** Reads the segments back to back into a reused buffer; the view is valid until the next read. */
  read(access: Access, segs: Segment[], total: number): Buffer {
    const view = this.back.buf.subarray(0, total);
    if (access === 'mem') this.viaMem(segs, view, 'read');
    else this.vm('read', segs, this.back, total);
    return view;
  }

  close(): void {
    if (this.memFd !== undefined) closeSync(this.memFd);
    this.memFd = undefined;
    for (const n of [this.out, this.back, this.liov, this.riov]) koffi.free(n.ptr);
  }

  private vm(dir: 'write' | 'read', segs: Segment[], local: { ptr: unknown }, total: number): void {
    if (segs.length > IOV_MAX || total > this.capacity) throw new RangeError(`batch of ${segs.length} ranges, ${total} bytes is too large`);
    this.liov.buf.writeBigUInt64LE(koffi.address(local.ptr), 0);
    writeU64(this.liov.buf, total, 8);
    segs.forEach((s, i) => {
      writeU64(this.riov.buf, s.addr, i * IOVEC_BYTES);
      writeU64(this.riov.buf, s.len, i * IOVEC_BYTES + 8);
    });
    const call = dir === 'write' ? vmCalls().writev : vmCalls().readv;
    this.syscalls++;
    const n = Number(call(this.pid, this.liov.ptr, 1, this.riov.ptr, segs.length, 0));
    if (n === total) return;
    if (n < 0) throw this.failure(dir, koffi.errno(), segs[0]!.addr);
    // A partial transfer stops at the first range the kernel could not reach.
    let at = 0;
    for (const s of segs) {
      if (n < at + s.len) throw this.failure(dir, 14 /* EFAULT */, s.addr + (n - at));
      at += s.len;
    }
  }

  private viaMem(segs: Segment[], buf: Buffer, dir: 'write' | 'read'): void {
    try {
      this.memFd ??= openSync(`/proc/${this.pid}/mem`, 'r+');
    } catch (e) {
      throw this.failure(dir, (e as { errno?: number }).errno ?? 0, segs[0]?.addr ?? 0, e);
    }
    let off = 0;
    for (const s of segs) {
      this.syscalls++;
      let n: number;
      try {
        n = dir === 'write' ? writeSync(this.memFd, buf, off, s.len, s.addr) : readSync(this.memFd, buf, off, s.len, s.addr);
      } catch (e) {
        throw this.failure(dir, (e as { errno?: number }).errno ?? 0, s.addr, e);
      }
      if (n !== s.len) throw this.failure(dir, 14, s.addr + n);
      off += s.len;
    }
  }

  private failure(dir: 'write' | 'read', errno: number, addr: number, cause?: unknown): PvError {
    const e = Math.abs(errno);
    const what = `${dir === 'write' ? 'writing' : 'reading'} process ${this.pid} at ${hex(addr)}`;
    const details = { pid: this.pid, address: hex(addr), errno: e };
    if (e === 3) return new PvError(ErrorCodes.PROCESS_EXITED, `${what}: the process is gone`, { details, cause });
    if (e === 1 || e === 13) return new PvError(ErrorCodes.PERMISSION_DENIED, `${what}: permission denied (needs CAP_SYS_PTRACE)`, { details, cause });
    if (e === 14 || e === 5) return new PvError(ErrorCodes.TARGET_MISMATCH, `${what}: the target does not map it (or refuses access): not as the snapshot's layout needs it`, { details, cause });
    return new PvError(ErrorCodes.READ_FAILED, `${what}: errno ${e}`, { details, cause, retriable: e === 12 /* ENOMEM */ });
  }
}

function native(bytes: number): { ptr: unknown; buf: Buffer } {
  const ptr = koffi.alloc('uint8_t', bytes);
  const buf = Buffer.from(koffi.view(ptr, bytes));
  buf.fill(0);
  return { ptr, buf };
}
