/** A run of consecutive pages of one chunk: `pages` pages from address `addr`, at `first` in the chunk. */
export interface ChunkRun {
  addr: number;
  /** Index of the run's first page in the chunk. */
  first: number;
  pages: number;
}

/**
 * Splits a chunk's ascending page addresses into runs of consecutive pages, at most `maxPages` each, so
 * one positional write or one iovec covers a whole run instead of a page.
 */
export function chunkRuns(addresses: ArrayLike<number>, pageSize: number, maxPages = Infinity): ChunkRun[] {
  const runs: ChunkRun[] = [];
  let cur: ChunkRun | undefined;
  for (let i = 0; i < addresses.length; i++) {
    const a = addresses[i]!;
    if (cur && cur.addr + cur.pages * pageSize === a && cur.pages < maxPages) cur.pages++;
    else runs.push((cur = { addr: a, first: i, pages: 1 }));
  }
  return runs;
}

/** Splits [start, start + pages * pageSize) into pieces of at most maxPages pages. */
export function* splitRun(start: number, pages: number, pageSize: number, maxPages: number): Generator<{ start: number; pages: number }> {
  for (let done = 0; done < pages; done += maxPages) {
    yield { start: start + done * pageSize, pages: Math.min(maxPages, pages - done) };
  }
}

const ZEROS = Buffer.alloc(64 * 1024);

/** True when every byte of buf[from, to) is zero (native memcmp against a zero block). */
export function isZero(buf: Buffer, from = 0, to = buf.length): boolean {
  for (let i = from; i < to; i += ZEROS.length) {
    const n = Math.min(ZEROS.length, to - i);
    if (buf.compare(ZEROS, 0, n, i, i + n) !== 0) return false;
  }
  return true;
}
