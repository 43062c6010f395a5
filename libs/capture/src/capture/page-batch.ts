import { ErrorCodes, PvError } from '@pagevault/errors';
import { pageHasher } from '@pagevault/hashing';
import { libc } from '../memory/libc';
import type { ReadTarget } from '../memory/remote-reader';
import { ZeroScanner } from '../memory/zero-page';
import { PAGE_DEFERRED, PAGE_FAILED, PAGE_OK, PAGE_PENDING } from '../memory/page-status';
import { isUntouched } from '../pagemap/pagemap-bits';
import { PagemapReader } from '../pagemap/pagemap-reader';
import { addSkipped } from './options';
import type { Session } from './session';

/** Chunk frames of at least this many pages are read into directly; smaller ones would cost calls. */
const DIRECT_MIN_PAGES = 64;

/**
 * The pages of one VMA waiting to be read, in ascending address order, up to the reader's capacity. A
 * flush reads them (coalesced, one call per IOV_MAX runs), classifies each as data, zero or
 * same-as-parent, hands them to the writer, then awaits the sink's drain: one await per batch.
 *
 * With chunk frames of DIRECT_MIN_PAGES pages or more, a batch is as large as the room left in the
 * writer's chunk and is read straight into that chunk frame: the data pages stay where they landed
 * (pages that turn out zero or same as parent are squeezed out by moving the later ones down) instead
 * of being copied from a read buffer into the frame. A capture is bound by memory bandwidth, and that
 * copy was a full extra read and write of every page.
 */
export class PageBatch {
  readonly addrs: Float64Array;
  private readonly status: Uint8Array;
  /** 1 for pages to read through /proc/PID/mem (see push). */
  private readonly viaMem: Uint8Array;
  private deferred = 0;
  private readonly zero: ZeroScanner;
  private refresh: PagemapReader | undefined;
  /** Per page of a batch being emitted with hashes: 1 data, 2 zero, 0 not read. */
  private readonly kind: Uint8Array;
  /** Batch indices of the data pages, and their hashes (hashed together, on every core; room for SHA-256's). */
  private readonly dataIdx: Int32Array;
  private readonly hashes: Buffer;
  n = 0;
  /** Read this VMA through /proc/PID/mem (it is not readable by process_vm_readv). */
  forceProcMem = false;
  /** Data pages read straight into frames, and where those kept later than a dropped page moved to. */
  private readonly kept: Float64Array;
  private readonly direct: boolean;

  constructor(private readonly s: Session) {
    const cap = s.reader.capacity;
    this.addrs = new Float64Array(cap);
    this.status = new Uint8Array(cap);
    this.viaMem = new Uint8Array(cap);
    this.zero = new ZeroScanner(s.reader.buf, s.pageSize);
    this.kind = new Uint8Array(cap);
    this.dataIdx = new Int32Array(cap);
    this.hashes = Buffer.allocUnsafe(s.readHashes ? cap * 32 : 0);
    this.kept = new Float64Array(cap);
    this.direct = s.writer.pagesPerChunk >= DIRECT_MIN_PAGES && s.writer.pagesPerChunk <= cap;
  }

  get full(): boolean {
    return this.n >= (this.direct ? this.s.writer.pageRoom : this.addrs.length);
  }

  /**
   * Queues a page. `viaMem` asks for /proc/PID/mem: process_vm_readv pins pages (FOLL_PIN), and pinning an
   * anonymous page shared copy-on-write (with a forked child, or KSM) makes the kernel copy it into the
   * target first ("unshare"); /proc/PID/mem takes plain references and copies nothing.
   */
  push(addr: number, viaMem: boolean): void {
    this.viaMem[this.n] = viaMem ? 1 : 0;
    if (viaMem) this.deferred++;
    this.addrs[this.n++] = addr;
  }

  async flush(): Promise<void> {
    const n = this.n;
    if (n === 0) return;
    const { status, viaMem } = this;
    const into = this.target(n);
    if (this.forceProcMem || this.deferred === 0) {
      status.fill(PAGE_PENDING, 0, n);
      this.readAll(n, this.forceProcMem, into);
    } else {
      // Two passes: process_vm_readv for the exclusive pages, then /proc/PID/mem for the shared ones.
      for (let j = 0; j < n; j++) status[j] = viaMem[j] ? PAGE_DEFERRED : PAGE_PENDING;
      if (this.deferred < n) this.readAll(n, false, into);
      for (let j = 0; j < n; j++) if (status[j] === PAGE_DEFERRED) status[j] = PAGE_PENDING;
      this.readAll(n, true, into);
      this.s.stats.nonExclusivePages += this.deferred;
    }
    this.emit(n, into);
    this.n = 0;
    this.deferred = 0;
    if (this.s.drain) await this.s.drain();
    if (this.s.signal?.aborted) throw aborted(this.s.pid, this.s.signal);
  }

  /** The writer's chunk frame, where n pages go when reading straight into frames; else the reader's buffer. */
  private target(n: number): ReadTarget | undefined {
    if (!this.direct) return undefined;
    const sp = this.s.writer.pageSpace();
    if (sp.room < n) throw new Error(`batch of ${n} pages > room of ${sp.room} in the chunk`);
    const ps = this.s.pageSize;
    const c = libc();
    return { buf: sp.frame.subarray(sp.offset, sp.offset + n * ps), addr: c ? c.addressOf(sp.frame) + sp.offset : 0 };
  }

  private readAll(n: number, procMem: boolean, into: ReadTarget | undefined): void {
    let i = 0;
    while ((i = this.s.reader.readPending(this.addrs, this.status, i, n, procMem, into)) < n) this.failed(i, n);
  }

  /**
   * Page i could not be read: it was unmapped or protected while we read (live mode, or another process
   * sharing the mm). One pagemap read over the rest of the batch finds what else vanished, so a region
   * unmapped under us costs one retry, not one call per page.
   */
  private failed(i: number, n: number): void {
    const ps = this.s.pageSize;
    this.refresh ??= new PagemapReader(this.s.pid, ps, 4096);
    const rp = this.refresh;
    let j = i;
    while (j < n) {
      const base = this.addrs[j];
      const span = Math.min(rp.maxEntries, (this.addrs[n - 1] - base) / ps + 1);
      rp.read(base, span);
      for (; j < n && this.addrs[j] < base + span * ps; j++) {
        if (this.status[j] !== PAGE_PENDING) continue;
        const gone = isUntouched(rp.words[2 * ((this.addrs[j] - base) / ps) + 1]);
        if (gone || j === i) {
          this.status[j] = PAGE_FAILED;
          addSkipped(this.s.stats, gone ? 'vanished' : 'unreadable', 1);
        }
      }
    }
  }

  private emit(n: number, into: ReadTarget | undefined): void {
    const { writer, stats, mode, pageSize: ps } = this.s;
    const { readHashes, parent } = this.s;
    const buf = into ? into.buf : this.s.reader.buf;
    this.zero.scan(buf);
    const { kind, dataIdx, hashes, kept } = this;
    // Classify first, so the data pages are hashed in one call (every core) rather than one at a time.
    let data = 0;
    const { status, zero } = this;
    for (let j = 0; j < n; j++) {
      if (status[j] !== PAGE_OK) {
        kind[j] = 0;
        continue;
      }
      if (zero.mayBeZero(j)) {
        // A run of pages that may be zero is checked in one compare; page by page only if that fails.
        let e = j + 1;
        while (e < n && status[e] === PAGE_OK && zero.mayBeZero(e)) e++;
        if (e - j > 1 && zero.allZero(j, e)) {
          kind.fill(2, j, e);
          j = e - 1;
          continue;
        }
        if (zero.allZero(j, j + 1)) {
          kind[j] = 2;
          continue;
        }
      }
      kind[j] = 1;
      dataIdx[data++] = j;
    }
    if (readHashes && data > 0) pageHasher().hashAt(buf, ps, dataIdx, data, hashes, readHashes.kind);
    const hw = readHashes?.hashBytes ?? 0;
    let seg = -1;
    let k = 0;
    let w = 0;
    // Read into the reader's buffer: runs of data pages are copied into the writer. Read into the chunk:
    // data pages are kept in place, moved down past any page dropped before them.
    const close = (end: number): void => {
      if (seg < 0) return;
      if (into) {
        if (seg !== w) buf.copyWithin(w * ps, seg * ps, end * ps);
        kept.set(this.addrs.subarray(seg, end), w);
        w += end - seg;
      } else {
        writer.addPages(this.addrs.subarray(seg, end), buf, seg * ps, end - seg);
      }
      stats.dataPages += end - seg;
      seg = -1;
    };
    for (let j = 0; j < n; j++) {
      const addr = this.addrs[j];
      if (kind[j] === 0) {
        close(j);
        continue;
      }
      if (kind[j] === 2) {
        close(j);
        writer.addZero(addr, 1);
        stats.zeroPages++;
        continue;
      }
      if (readHashes) {
        const h = k++ * hw;
        readHashes.add(addr, hashes, h);
        if (mode === 'hash' && parent) {
          const p = parent.find(addr);
          if (p >= 0 && parent.table.sameHash(p, hashes, h)) {
            close(j);
            writer.addParent(addr, 1);
            stats.parentPages++;
            continue;
          }
        }
      }
      if (seg < 0) seg = j;
    }
    close(n);
    if (into) writer.placedPages(kept, w);
  }
}

export function aborted(pid: number, signal: AbortSignal): PvError {
  return new PvError(ErrorCodes.SNAPSHOT_FAILED, `capture of process ${pid} was aborted`, {
    cause: signal.reason,
    details: { pid },
  });
}
