/**
 * The bytes of the pages a compactor stored last, by hash: where the next snapshot of the same process
 * finds most of its delta bases without a GET (a base not held costs a ranged GET and a blob to inflate
 * and verify). Set associative: a page goes to one of the WAYS slots its hash picks, replacing the
 * oldest, so a lookup is at most WAYS 32-byte compares and nothing is allocated per page.
 */
const WAYS = 4;

export class RecentPages {
  private readonly raw: Buffer;
  private readonly hashes: Buffer;
  /** When each slot was written (0: never or let go), to replace the oldest of a set. */
  private readonly stamp: Float64Array;
  private clock = 0;
  private readonly slots: number;

  constructor(
    private readonly pageSize: number,
    bytes: number,
  ) {
    this.slots = Math.max(WAYS, Math.floor(bytes / pageSize / WAYS) * WAYS);
    this.raw = Buffer.allocUnsafe(this.slots * pageSize);
    this.hashes = Buffer.alloc(this.slots * 32);
    this.stamp = new Float64Array(this.slots);
  }

  /** Keeps the page with hash h[at, at + 32) whose bytes are data[offset, offset + pageSize). */
  put(h: Uint8Array, at: number, data: Uint8Array, offset: number): void {
    const p = this.setOf(h, at);
    let s = p;
    for (let w = 0; w < WAYS; w++) {
      if (this.holds(p + w, h, at)) return;
      if (this.stamp[p + w]! < this.stamp[s]!) s = p + w;
    }
    this.hashes.set(h.subarray(at, at + 32), s * 32);
    this.raw.set(data.subarray(offset, offset + this.pageSize), s * this.pageSize);
    this.stamp[s] = ++this.clock;
  }

  /**
   * Copies the page with hash h[at, at + 32) to out[outAt…] if it is held, and lets its slot go: a base
   * was replaced at its address, so the next snapshot will ask for its replacement instead (what stays
   * is, roughly, the process's current pages). False if not held.
   */
  take(h: Uint8Array, at: number, out: Uint8Array, outAt: number): boolean {
    const p = this.setOf(h, at);
    let s = p;
    while (s < p + WAYS && !this.holds(s, h, at)) s++;
    if (s === p + WAYS) return false;
    out.set(this.raw.subarray(s * this.pageSize, (s + 1) * this.pageSize), outAt);
    this.stamp[s] = 0;
    return true;
  }

  private holds(s: number, h: Uint8Array, at: number): boolean {
    if (this.stamp[s] === 0) return false;
    const hs = this.hashes;
    const o = s * 32;
    for (let k = 0; k < 32; k++) if (hs[o + k] !== h[at + k]) return false;
    return true;
  }

  /** The first slot of the set a hash picks. SHA-256 output: its bytes are already uniform. */
  private setOf(h: Uint8Array, at: number): number {
    return (((h[at + 4]! | (h[at + 5]! << 8) | (h[at + 6]! << 16) | (h[at + 7]! << 24)) >>> 0) % (this.slots / WAYS)) * WAYS;
  }
}
