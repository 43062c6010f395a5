import { hash } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/** SHA-256 of page p of data into out[32k, 32k + 32), on the calling thread. */
function hashPage(data: Uint8Array, p: number, ps: number, out: Uint8Array, k: number): void {
  out.set(hash('sha256', data.subarray(p * ps, (p + 1) * ps), 'buffer') as unknown as Buffer, k * 32);
}

// Control words of a worker's shared block: request sequence, done sequence, page count, page size, and
// the next unclaimed page of the request (claimed CHUNK pages at a time, by the helper or by the caller).
const REQ = 0;
const DONE = 1;
const N = 2;
const PS = 3;
const CLAIM = 4;
/** Pages claimed at once: ~25 µs of hashing, the most a caller waits for a helper that is slow to run. */
const CHUNK = 8;

const WORKER_SOURCE = `
const { workerData } = require('node:worker_threads');
const { hash } = require('node:crypto');
const { ctrl: ctrlSab, input: inputSab, output: outputSab } = workerData;
const ctrl = new Int32Array(ctrlSab);
const input = Buffer.from(inputSab);
const output = Buffer.from(outputSab);
let seen = 0;
for (;;) {
  Atomics.wait(ctrl, ${REQ}, seen);
  seen = Atomics.load(ctrl, ${REQ});
  const n = ctrl[${N}], ps = ctrl[${PS}];
  for (let c; (c = Atomics.add(ctrl, ${CLAIM}, ${CHUNK})) < n; ) {
    const end = Math.min(c + ${CHUNK}, n);
    for (let i = c; i < end; i++) output.set(hash('sha256', input.subarray(i * ps, (i + 1) * ps), 'buffer'), i * 32);
  }
  Atomics.store(ctrl, ${DONE}, seen);
  Atomics.notify(ctrl, ${DONE});
}
`;

interface Helper {
  worker: Worker;
  ctrl: Int32Array;
  input: Buffer;
  output: Buffer;
  seq: number;
}

/** How long the calling thread waits for a helper's share before hashing it itself (a helper that died). */
const HELPER_TIMEOUT_MS = 10_000;

/**
 * SHA-256 of many 4 KiB pages at once, on the calling thread and `helpers` worker threads together, and
 * synchronous: no promise, no message per call. Each helper owns a shared block (its share of the pages
 * and their hashes); a call copies each helper's share in, wakes it through Atomics, hashes its own share
 * meanwhile, then takes over whatever part of the helpers' shares they have not claimed yet (CHUNK pages
 * at a time, through an atomic counter) and waits only for chunks a helper is in the middle of. So a
 * helper whose core is busy with another process costs at most a chunk, never its whole share, and
 * hashing uses every core that is free without the per-chunk messages and promises of a message-passing
 * pool (measured slower than one thread here, docs/benchmarks.md). Calls are not reentrant (they cannot
 * be: they are synchronous). Helpers start on first use, never keep the process alive, and a helper that
 * stops answering costs one timeout, after which its share is hashed here and it is not used again.
 * Memory: per helper, maxPages pages of input and their hashes (4 MiB + 32 KiB by default).
 */
export class PageHasher {
  private helpers: Helper[] | undefined;
  private readonly maxShare: number;

  constructor(
    readonly threads = Math.max(0, availableParallelism() - 1),
    readonly maxPages = 1024,
    private readonly pageSize = 4096,
  ) {
    this.maxShare = Math.ceil(maxPages / (threads + 1));
  }

  /** Hashes the n pages of data (back to back) into out[0, 32n). */
  hash(data: Uint8Array, n: number, ps: number, out: Uint8Array): void {
    this.hashSome(data, ps, n, undefined, out);
  }

  /** Hashes pages idx[0..count) of data into out[32k, 32k + 32): only the pages a caller needs. */
  hashAt(data: Uint8Array, ps: number, idx: ArrayLike<number>, count: number, out: Uint8Array): void {
    this.hashSome(data, ps, count, idx, out);
  }

  async close(): Promise<void> {
    const hs = this.helpers ?? [];
    this.helpers = [];
    await Promise.all(hs.map((h) => h.worker.terminate()));
  }

  /** Pages idx[k] (or k, when idx is undefined: contiguous pages) for k < count. */
  private hashSome(data: Uint8Array, ps: number, count: number, idx: ArrayLike<number> | undefined, out: Uint8Array): void {
    const helpers = count >= 32 && ps === this.pageSize ? this.start() : [];
    // Shares: helpers take up to maxShare pages each from the end; the caller hashes the rest (the most).
    const per = Math.min(this.maxShare, Math.floor(count / (helpers.length + 1)));
    const busy: { h: Helper; from: number; n: number }[] = [];
    let mine = count;
    for (const h of helpers) {
      if (per === 0) break;
      const from = mine - per;
      // Contiguous pages go into the helper's block in one copy, scattered ones a page at a time.
      if (!idx) h.input.set(data.subarray(from * ps, (from + per) * ps));
      else for (let k = 0; k < per; k++) h.input.set(data.subarray(idx[from + k]! * ps, (idx[from + k]! + 1) * ps), k * ps);
      h.ctrl[N] = per;
      h.ctrl[PS] = ps;
      Atomics.store(h.ctrl, CLAIM, 0);
      Atomics.store(h.ctrl, REQ, ++h.seq);
      Atomics.notify(h.ctrl, REQ);
      busy.push({ h, from, n: per });
      mine = from;
    }
    for (let k = 0; k < mine; k++) hashPage(data, idx ? idx[k]! : k, ps, out, k);
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
        for (let k = from + claim; k < from + Math.min(claim + CHUNK, n); k++) hashPage(data, idx ? idx[k]! : k, ps, out, k);
      }
      // All of it taken here: the helper touches nothing of this request (claims are exclusive), no wait.
      if (all) continue;
      const answered = this.await(h);
      for (let c = 0; c < n; c += CHUNK) {
        if (taken[c / CHUNK]) continue;
        const end = Math.min(c + CHUNK, n);
        if (answered) out.set(h.output.subarray(c * 32, end * 32), (from + c) * 32);
        else for (let k = from + c; k < from + end; k++) hashPage(data, idx ? idx[k]! : k, ps, out, k);
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
      const ctrl = new SharedArrayBuffer(32);
      const input = new SharedArrayBuffer(this.maxShare * this.pageSize);
      const output = new SharedArrayBuffer(this.maxShare * 32);
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ctrl, input, output } });
      worker.unref(); // blocked in Atomics.wait between calls: it must not keep the process alive
      worker.on('error', () => (this.helpers = this.helpers?.filter((x) => x.worker !== worker)));
      this.helpers.push({ worker, ctrl: new Int32Array(ctrl), input: Buffer.from(input), output: Buffer.from(output), seq: 0 });
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
