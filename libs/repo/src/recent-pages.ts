/**
 * The bytes of the pages a compactor stored last, by hash: where the next snapshot of the same process
 * finds most of its delta bases without a GET (the pages it changes were mostly changed, and stored, by
 * the snapshot before). Direct-mapped: a page goes to the slot its hash picks and replaces whatever was
 * there, so a lookup is one 32-byte compare and nothing is allocated per page. A miss only costs a fetch.
 */
export class RecentPages {
  private readonly raw: Buffer;
  private readonly hashes: Buffer;
  private readonly used: Uint8Array;
  private readonly slots: number;

  constructor(
    private readonly pageSize: number,
    bytes: number,
  ) {
    this.slots = Math.max(1, Math.floor(bytes / pageSize));
    this.raw = Buffer.allocUnsafe(this.slots * pageSize);
    this.hashes = Buffer.alloc(this.slots * 32);
    this.used = new Uint8Array(this.slots);
  }

  /** Keeps the page with hash h[at, at + 32) whose bytes are data[offset, offset + pageSize). */
  put(h: Uint8Array, at: number, data: Uint8Array, offset: number): void {
    const s = this.slotOf(h, at);
    this.hashes.set(h.subarray(at, at + 32), s * 32);
    this.raw.set(data.subarray(offset, offset + this.pageSize), s * this.pageSize);
    this.used[s] = 1;
  }

  /** Copies the page with hash h[at, at + 32) to out[outAt…] if it is held; false if not. */
  get(h: Uint8Array, at: number, out: Uint8Array, outAt: number): boolean {
    const s = this.slotOf(h, at);
    if (!this.used[s]) return false;
    const hs = this.hashes;
    const o = s * 32;
    for (let k = 0; k < 32; k++) if (hs[o + k] !== h[at + k]) return false;
    out.set(this.raw.subarray(s * this.pageSize, (s + 1) * this.pageSize), outAt);
    return true;
  }

  private slotOf(h: Uint8Array, at: number): number {
    // SHA-256 output: its bytes are already uniform.
    return ((h[at + 4]! | (h[at + 5]! << 8) | (h[at + 6]! << 16) | (h[at + 7]! << 24)) >>> 0) % this.slots;
  }
}
