import { closeSync, openSync, readSync } from 'node:fs';
import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { isAlive, isExiting, procError } from '../procfs/proc-files';
import { PAGEMAP_ENTRY_BYTES } from './pagemap-bits';

/** Entries per pread by default: 64 Ki entries = 512 KiB of buffer, 256 MiB of address space. */
export const DEFAULT_PAGEMAP_ENTRIES = 64 * 1024;

/**
 * Reads /proc/PID/pagemap in windows, one pread per window into one reused buffer. A read may go ahead
 * (`through`) over the VMAs that follow, so that a run of small VMAs costs one pread, not one each.
 * Memory: `maxEntries * 8` bytes, whatever the size of the process.
 */
export class PagemapReader {
  private readonly buf: Buffer;
  /** High words of the last window: entry i's flags are hi[2 * i + 1]. */
  readonly words: Uint32Array;
  private fd: number;
  /** The window in words: `count` entries from address `start` (count 0: none to serve again). */
  private readonly win = { start: 0, count: 0 };

  constructor(
    private readonly pid: number,
    private readonly pageSize: number,
    readonly maxEntries = DEFAULT_PAGEMAP_ENTRIES,
  ) {
    this.buf = Buffer.allocUnsafeSlow(maxEntries * PAGEMAP_ENTRY_BYTES);
    this.words = new Uint32Array(this.buf.buffer, this.buf.byteOffset, maxEntries * 2);
    try {
      this.fd = openSync(`/proc/${pid}/pagemap`, 'r');
    } catch (e) {
      throw procError(e, pid, `/proc/${pid}/pagemap`, true);
    }
  }

  /**
   * Reads the entries of `count` pages from `addr` (count <= maxEntries) and returns b: the flags word of
   * page k is then `words[2 * (b + k) + 1]`. With `through` past the pages asked for, the entries up to
   * it are read too (maxEntries in all at most), and a later read with `through` inside them is served
   * from them without a pread; a read without `through` always reads afresh.
   */
  read(addr: number, count: number, through = 0): number {
    if (count > this.maxEntries) throw new RangeError(`pagemap window of ${count} > ${this.maxEntries}`);
    const ps = this.pageSize;
    const w = this.win;
    if (through > 0 && addr >= w.start && addr + count * ps <= w.start + w.count * ps) return (addr - w.start) / ps;
    const entries = Math.max(count, Math.min(this.maxEntries, (through - addr) / ps));
    w.count = 0;
    this.readAt(addr, entries);
    if (through > 0) {
      w.start = addr;
      w.count = entries;
    }
    return 0;
  }

  private readAt(addr: number, count: number): void {
    const want = count * PAGEMAP_ENTRY_BYTES;
    const pos = (addr / this.pageSize) * PAGEMAP_ENTRY_BYTES;
    let got = 0;
    while (got < want) {
      let n: number;
      try {
        n = readSync(this.fd, this.buf, got, want - got, pos + got);
      } catch (e) {
        throw procError(e, this.pid, `/proc/${this.pid}/pagemap at ${hex(addr)}`, true);
      }
      if (n === 0) {
        // The mm is gone (exit, or a zombie): pagemap reads return nothing. A process on its way out
        // (PF_EXITING) may not be a zombie yet.
        if (!isAlive(this.pid) || isExiting(this.pid)) {
          throw new PvError(
            ErrorCodes.PROCESS_EXITED,
            `process ${this.pid} exited during capture (pagemap at ${hex(addr)})`,
            {
              details: { pid: this.pid, address: hex(addr) },
            },
          );
        }
        // Alive, but the address space this file was opened on is gone: the process ran execve (only a
        // live capture can see that). What was read of it belongs to a program that no longer runs.
        throw new PvError(
          ErrorCodes.PROCESS_EXITED,
          `process ${this.pid} replaced its program (execve) during the capture: the address space being read is gone (pagemap at ${hex(addr + (got / 8) * this.pageSize)}); snapshot it again`,
          {
            details: { pid: this.pid, address: hex(addr), exec: true },
          },
        );
      }
      got += n;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}
