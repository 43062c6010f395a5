import { hash as sha256 } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';

/**
 * SHA-256 of every page of a chunk, spread over worker threads: hashing is the compactor's biggest CPU
 * cost (~3 µs a 4 KiB page on one core here) and a single Node thread cannot use the second core.
 * One message per worker per chunk, never per page. With threads = 0 it hashes on the calling thread.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { hash } = require('node:crypto');
parentPort.on('message', ({ id, data, n, ps }) => {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const out = Buffer.allocUnsafe(n * 32);
  for (let i = 0; i < n; i++) hash('sha256', buf.subarray(i * ps, (i + 1) * ps), 'buffer').copy(out, i * 32);
  parentPort.postMessage({ id, out }, [out.buffer]);
});
`;

export function hashPagesSync(data: Uint8Array, n: number, ps: number, out: Buffer): void {
  for (let i = 0; i < n; i++) (sha256('sha256', data.subarray(i * ps, (i + 1) * ps), 'buffer') as unknown as Buffer).copy(out, i * 32);
}

export class HashPool {
  private readonly workers: Worker[] = [];
  private readonly waiting = new Map<number, (b: Buffer) => void>();
  private next = 0;

  constructor(readonly threads = Math.max(0, availableParallelism() - 0)) {
    for (let i = 0; i < threads; i++) {
      const w = new Worker(WORKER_SOURCE, { eval: true });
      w.on('message', (m: { id: number; out: Uint8Array }) => {
        this.waiting.get(m.id)?.(Buffer.from(m.out.buffer, m.out.byteOffset, m.out.byteLength));
        this.waiting.delete(m.id);
      });
      w.unref();
      this.workers.push(w);
    }
  }

  /** Writes the 32-byte hashes of the n pages of data into out[0, 32n). */
  async hashPages(data: Uint8Array, n: number, ps: number, out: Buffer): Promise<void> {
    const k = this.workers.length;
    if (k === 0 || n < 8) return hashPagesSync(data, n, ps, out);
    const per = Math.ceil(n / k);
    await Promise.all(
      this.workers.map(async (w, j) => {
        const lo = j * per;
        const cnt = Math.min(per, n - lo);
        if (cnt <= 0) return;
        const id = this.next++;
        const done = new Promise<Buffer>((r) => this.waiting.set(id, r));
        // Referenced only while a reply is awaited, so an idle pool never keeps the process alive.
        w.ref();
        // A view would clone its whole backing buffer: copy just this share once and transfer it.
        const share = new Uint8Array(cnt * ps);
        share.set(data.subarray(lo * ps, (lo + cnt) * ps));
        w.postMessage({ id, data: share, n: cnt, ps }, [share.buffer]);
        const hashes = await done;
        if (![...this.waiting.keys()].length) w.unref();
        hashes.copy(out, lo * 32);
      }),
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
