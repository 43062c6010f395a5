import { hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import koffi from 'koffi';
import { watchHelperBoot, settleHelperThreads } from './helper-threads';
import { loadNativePageHash, NATIVE_DECLS, NATIVE_LIB_PATH, PAGE_HASH_BYTES, XXH3_SECRET, type NativePageHash, type NativeSha256, type PageHashKind } from './native-lib';

/** The batch hashing library once loaded and checked (undefined: node:crypto, a call a page). */
let nativeLib: NativePageHash | undefined | null = null;
function native(): NativePageHash | undefined {
  if (nativeLib === null) nativeLib = loadNativePageHash();
  return nativeLib;
}

/** How this process hashes pages: 'native' (scripts/build-native.cjs built it) or 'node:crypto'. */
export function pageHashing(): 'native' | 'node:crypto' {
  return native() ? 'native' : 'node:crypto';
}

/** How this process computes a page's SHA-256: see NativeSha256, or node:crypto without the library. */
export function sha256Implementation(): NativeSha256 | 'node:crypto' {
  return native()?.sha256 ?? 'node:crypto';
}

/**
 * Hashes of `kind` of pages k in [from, from + n) into out[wk, wk + w): page idx[k] of data, or page k
 * when idx is undefined. One native call for the lot, or one node:crypto call a page without the library
 * (SHA-256 only: PageHasher refuses XXH3 without it).
 */
function hashRange(lib: NativePageHash | undefined, kind: PageHashKind, data: Uint8Array, ps: number, idx: Int32Array | undefined, from: number, n: number, out: Uint8Array): void {
  if (lib) {
    if (idx) lib.at(kind, data, ps, idx, from, n, out, from);
    else lib.pages(kind, data, from, n, ps, out, from);
    return;
  }
  for (let k = from; k < from + n; k++) {
    const p = idx ? idx[k]! : k;
    out.set(hash('sha256', data.subarray(p * ps, (p + 1) * ps), 'buffer') as unknown as Buffer, k * 32);
  }
}

// Control words of a worker's shared block: request sequence, done sequence, page count, page size, the
// next unclaimed page of the request (claimed CHUNK pages at a time, by the helper or by the caller), the
// request's first page, and (float64 words from ADDR) the address and byte length of the caller's pages
// and the address of its page indexes (0: contiguous pages). The helper reads them in place, no copy: the
// call does not return before it is done with them.
const REQ = 0;
const DONE = 1;
const N = 2;
const PS = 3;
const CLAIM = 4;
const FROM = 5;
const ADDR = 4;
/** Set by the helper once it has loaded its libraries (int32 word 14: after the float64 words). */
const BOOTED = 14;
/** The request's hash: 0 SHA-256, 1 XXH3-128. */
const KIND = 15;
const CTRL_BYTES = 64;
/** Pages claimed at once: ~25 µs of hashing, the most a caller waits for a helper that is slow to run. */
const CHUNK = 8;

// With the native library a chunk is one call; without it (node:crypto a page) the helper sees the
// caller's memory through views made once a request.
const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
const { ctrl: ctrlSab, output: outputSab, koffi: koffiPath, lib, decls, secret } = workerData;
const koffi = require(koffiPath);
const ctrl = new Int32Array(ctrlSab);
const addr = new Float64Array(ctrlSab);
const output = Buffer.from(outputSab);
const so = lib && koffi.load(lib);
const f = so && Object.fromEntries(Object.entries(decls).map(([k, d]) => [k, so.func(d)]));
const key = Buffer.from(secret);
Atomics.store(ctrl, ${BOOTED}, 1);
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, ${REQ}, seen);
  seen = Atomics.load(ctrl, ${REQ});
  const n = ctrl[${N}], ps = ctrl[${PS}], from = ctrl[${FROM}], xxh = ctrl[${KIND}] === 1, w = xxh ? 16 : 32;
  const data = addr[${ADDR}], bytes = addr[${ADDR} + 1], idx = addr[${ADDR} + 2];
  let d, ix;
  if (!so) {
    d = Buffer.from(koffi.view(BigInt(data), bytes));
    if (idx) ix = new Int32Array(koffi.view(BigInt(idx), (from + n) * 4));
  }
  for (let c; (c = Atomics.add(ctrl, ${CLAIM}, ${CHUNK})) < n; ) {
    const end = Math.min(c + ${CHUNK}, n);
    if (so && xxh && idx) f.xxh3At(data, ps, idx, from + c, end - c, output, c, key, key.length);
    else if (so && xxh) f.xxh3Pages(data, from + c, end - c, ps, output, c, key, key.length);
    else if (so && idx) f.sha256At(data, ps, idx, from + c, end - c, output, c);
    else if (so) f.sha256Pages(data, from + c, end - c, ps, output, c);
    else for (let i = c; i < end; i++) {
      const p = ix ? ix[from + i] : from + i;
      output.set(hash('sha256', d.subarray(p * ps, (p + 1) * ps), 'buffer'), i * 32);
    }
  }
  Atomics.store(ctrl, ${DONE}, seen);
  Atomics.notify(ctrl, ${DONE});
}
`;

/**
 * Caller memory a helper was given by address when it stopped answering: kept reachable for good, so a
 * helper that wakes up late reads memory that still exists (it writes only its own block, never `out`).
 */
const quarantined: unknown[] = [];

interface Helper {
  worker: Worker;
  /** The worker has exited (an error, or terminated). */
  gone?: boolean;
  ctrl: Int32Array;
  addr: Float64Array;
  output: Buffer;
  seq: number;
}

/** How long the calling thread waits for a helper's share before hashing it itself (a helper that died). */
const HELPER_TIMEOUT_MS = 10_000;

/**
 * SHA-256 of many 4 KiB pages at once, on the calling thread and `helpers` worker threads together, and
 * synchronous: no promise, no message per call. Each helper owns a shared block (its share of the request
 * and the hashes it computes); a call wakes it through Atomics (the helper reads the caller's pages in
 * place, by address), hashes its own share meanwhile, then takes over whatever part of the helpers' shares they have not claimed yet (CHUNK pages
 * at a time, through an atomic counter) and waits only for chunks a helper is in the middle of. So a
 * helper whose core is busy with another process costs at most a chunk, never its whole share, and
 * hashing uses every core that is free without the per-chunk messages and promises of a message-passing
 * pool (measured slower than one thread here, docs/benchmarks.md). Calls are not reentrant (they cannot
 * be: they are synchronous). Helpers start on first use, never keep the process alive, and a helper that
 * stops answering costs one timeout, after which its share is hashed here and it is not used again.
 * Memory: per helper, the hashes of its share (32 KiB by default).
 * Each thread hashes a range of pages in one call into native/sha256-pages.c (OpenSSL's SHA-256, ~345 k
 * pages/s a core here) when scripts/build-native.cjs built it, else a node:crypto call a page (~177 k/s);
 * or, for change detection only, into native/xxh3-pages.c (XXH3-128 keyed by this process's secret,
 * ~1.7 M pages/s a core: memory-bound).
 */
export class PageHasher {
  private helpers: Helper[] | undefined;
  private readonly maxShare: number;
  private readonly lib: NativePageHash | undefined;

  constructor(
    readonly threads = Math.max(0, availableParallelism() - 1),
    readonly maxPages = 1024,
    private readonly pageSize = 4096,
    useNative = true,
  ) {
    this.maxShare = Math.ceil(maxPages / (threads + 1));
    this.lib = useNative ? native() : undefined;
  }

  /** Whether this hasher hashes through the native batch library. */
  get native(): boolean {
    return this.lib !== undefined;
  }

  /** Whether this hasher can hash pages of `kind` (XXH3 needs the native library). */
  supports(kind: PageHashKind): boolean {
    return kind === 'sha256' || this.lib !== undefined;
  }

  /** Hashes the n pages of data (back to back) into out[0, wn), w = PAGE_HASH_BYTES[kind]. */
  hash(data: Uint8Array, n: number, ps: number, out: Uint8Array, kind: PageHashKind = 'sha256'): void {
    this.hashSome(kind, data, ps, n, undefined, out);
  }

  /** Hashes pages idx[0..count) of data into out[wk, wk + w): only the pages a caller needs. */
  hashAt(data: Uint8Array, ps: number, idx: Int32Array, count: number, out: Uint8Array, kind: PageHashKind = 'sha256'): void {
    this.hashSome(kind, data, ps, count, idx, out);
  }

  /** Helpers started and still loading their libraries. */
  get starting(): number {
    return (this.helpers ?? []).filter((h) => !h.gone && Atomics.load(h.ctrl, BOOTED) === 0).length;
  }

  async close(): Promise<void> {
    await settleHelperThreads(); // terminating a helper that is still loading koffi is as fatal as exiting
    const hs = this.helpers ?? [];
    this.helpers = [];
    await Promise.all(hs.map((h) => h.worker.terminate()));
  }

  /** Pages idx[k] (or k, when idx is undefined: contiguous pages) for k < count. */
  private hashSome(kind: PageHashKind, data: Uint8Array, ps: number, count: number, idx: Int32Array | undefined, out: Uint8Array): void {
    if (!this.supports(kind)) throw new Error(`page hashing: ${kind} needs the native library (${NATIVE_LIB_PATH})`);
    const w = PAGE_HASH_BYTES[kind];
    // Only a helper done with its last request gets a share of this one. One whose last share the caller
    // took whole was not waited for, and may still be waking up: writing this request's words into its
    // block meanwhile would let it read half of them (the previous data's address with this request's
    // page range) and hash the wrong pages into chunks it claims here — wrong hashes, taken as right.
    const helpers = count >= 32 && ps === this.pageSize ? this.start().filter((h) => Atomics.load(h.ctrl, DONE) === h.seq) : [];
    // Shares: helpers take up to maxShare pages each from the end; the caller hashes the rest (the most).
    const per = Math.min(this.maxShare, Math.floor(count / (helpers.length + 1)));
    const busy: { h: Helper; from: number; n: number }[] = [];
    let mine = count;
    const dataAddr = per > 0 ? Number(koffi.address(data)) : 0;
    const idxAddr = per > 0 && idx ? Number(koffi.address(idx)) : 0;
    for (const h of helpers) {
      if (per === 0) break;
      const from = mine - per;
      h.addr[ADDR] = dataAddr;
      h.addr[ADDR + 1] = data.byteLength;
      h.addr[ADDR + 2] = idxAddr;
      h.ctrl[N] = per;
      h.ctrl[PS] = ps;
      h.ctrl[FROM] = from;
      h.ctrl[KIND] = kind === 'sha256' ? 0 : 1;
      Atomics.store(h.ctrl, CLAIM, 0);
      Atomics.store(h.ctrl, REQ, ++h.seq);
      Atomics.notify(h.ctrl, REQ);
      busy.push({ h, from, n: per });
      mine = from;
    }
    hashRange(this.lib, kind, data, ps, idx, 0, mine, out);
    for (const { h, from, n } of busy) {
      // Chunks the helper has not claimed yet are hashed here, from the caller's data.
      const taken = new Uint8Array(Math.ceil(n / CHUNK));
      let all = true;
      for (let c = 0; c < n; c += CHUNK) {
        const claim = Atomics.add(h.ctrl, CLAIM, CHUNK);
        if (claim >= n) {
          all = false;
          break;
        }
        taken[claim / CHUNK] = 1;
        hashRange(this.lib, kind, data, ps, idx, from + claim, Math.min(CHUNK, n - claim), out);
      }
      // All of it taken here: the helper touches nothing of this request (claims are exclusive), no wait.
      if (all) continue;
      const answered = this.await(h);
      if (!answered) quarantined.push(data, idx);
      for (let c = 0; c < n; c += CHUNK) {
        if (taken[c / CHUNK]) continue;
        const end = Math.min(c + CHUNK, n);
        if (answered) out.set(h.output.subarray(c * w, end * w), (from + c) * w);
        else hashRange(this.lib, kind, data, ps, idx, from + c, end - c, out);
      }
    }
  }

  /** Waits for a helper's current request; false (and the helper retired) if it does not answer. */
  private await(h: Helper): boolean {
    const deadline = Date.now() + HELPER_TIMEOUT_MS;
    for (;;) {
      const done = Atomics.load(h.ctrl, DONE);
      if (done === h.seq) return true;
      const left = deadline - Date.now();
      if (left <= 0) {
        this.helpers = this.helpers?.filter((x) => x !== h);
        void h.worker.terminate();
        return false;
      }
      Atomics.wait(h.ctrl, DONE, done, left);
    }
  }

  private start(): Helper[] {
    if (this.helpers) return this.helpers;
    this.helpers = [];
    for (let i = 0; i < this.threads; i++) {
      const ctrl = new SharedArrayBuffer(CTRL_BYTES);
      const output = new SharedArrayBuffer(this.maxShare * 32);
      const lib = this.lib ? NATIVE_LIB_PATH : undefined;
      const workerData = { ctrl, output, koffi: require.resolve('koffi'), lib, decls: NATIVE_DECLS, secret: XXH3_SECRET };
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData });
      worker.unref(); // blocked in Atomics.wait between calls: it must not keep the process alive
      const h: Helper = { worker, ctrl: new Int32Array(ctrl), addr: new Float64Array(ctrl), output: Buffer.from(output), seq: 0 };
      worker.on('error', () => (this.helpers = this.helpers?.filter((x) => x.worker !== worker)));
      worker.on('exit', () => (h.gone = true));
      watchHelperBoot(worker, h.ctrl, BOOTED);
      this.helpers.push(h);
    }
    return this.helpers;
  }
}

let shared: PageHasher | undefined;
let sharedThreads: number | undefined;

/**
 * The process's page hasher, shared by capture and compaction in one process (calls are synchronous,
 * so they never overlap). Helper threads: as configured, else one fewer than the cores.
 */
export function pageHasher(): PageHasher {
  return (shared ??= new PageHasher(sharedThreads));
}

/** Sets the shared hasher's helper threads (an app's configuration); takes effect for the next pageHasher(). */
export function configurePageHasher(threads: number): void {
  if (!Number.isInteger(threads) || threads < 0) throw new RangeError(`hash threads must be an integer >= 0, got ${threads}`);
  if (shared?.threads !== threads) {
    void shared?.close();
    shared = undefined;
  }
  sharedThreads = threads;
}
