import { hash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { keys } from './keys';
import { PageFetcher } from './page-fetcher';
import { Repository } from './repository';
import type { TenantStore } from './tenant-store';

const PS = 4096;
const page = (fill: number) => Buffer.alloc(PS, fill);
const sha = (b: Buffer) => hash('sha256', b, 'buffer') as unknown as Buffer;

describe('PageFetcher', () => {
  let dir: string;
  let t: TenantStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-fetch-'));
    t = await new Repository(new DirectoryObjectStore(dir)).tenant('acme');
    for (const f of [1, 2, 3]) t.addPage(sha(page(f)), page(f), 0);
    await t.flush();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  /** Fetches the pages with the given fills (by their hashes) into one buffer. */
  const fetch = (f: PageFetcher, hashes: Buffer[]) => {
    const all = Buffer.concat(hashes);
    const out = Buffer.alloc(hashes.length * PS);
    return f.fetch(all, hashes.map((_, i) => i * 32), hashes.length, out, (i) => `page ${i}`).then(() => out);
  };

  it('places every page and hashes a repeated page once, within a call and across calls', async () => {
    const f = new PageFetcher(t, PS);
    const want = [1, 1, 2, 1, 3, 3, 1];
    const out = await fetch(f, want.map((x) => sha(page(x))));
    want.forEach((x, i) => expect(out.subarray(i * PS, (i + 1) * PS).equals(page(x))).toBe(true));
    expect(f.stats.pagesVerified).toBe(3);
    await fetch(f, [sha(page(2)), sha(page(1))]);
    expect(f.stats.pages).toBe(9);
    expect(f.stats.pagesVerified).toBe(3); // the cached blob's slots are verified already
  });

  it('still checks a slot against every other hash an index points at it (a hostile index)', async () => {
    const loc = t.index.get(sha(page(1)))!;
    t.index.add(sha(page(9)), 0, loc); // page 9 was never stored: the index lies about where it is
    const f = new PageFetcher(t, PS);
    await expect(fetch(f, [sha(page(1)), sha(page(9))])).rejects.toMatchObject({ code: ErrorCodes.PAGE_HASH_MISMATCH });
    await expect(fetch(new PageFetcher(t, PS), [sha(page(9))])).rejects.toMatchObject({ code: ErrorCodes.PAGE_HASH_MISMATCH });
  });

  it('after a pack is found gone, starts no GET and lets none run on before it retries on a rebuilt index', async () => {
    // Eight packs of one page each, so one fetch makes eight ranged GETs, four at a time.
    const d = await mkdtemp(join(tmpdir(), 'pv-fetch-'));
    try {
      const base = new DirectoryObjectStore(d);
      const w = await new Repository(base).tenant('acme');
      const fills = [11, 12, 13, 14, 15, 16, 17, 18];
      for (const f of fills) {
        w.addPage(sha(page(f)), page(f), 0);
        await w.flush();
      }
      // The first GET of fill 16's pack (the sixth GET) says it is gone (as when a prune repacked it since the index was
      // loaded); every other GET takes 50 ms.
      const gone = keys.pack('acme', w.index.packOf(w.index.locate(sha(page(16)))));
      let inFlight = 0;
      let most = 0;
      let failedOnce = false;
      const log: string[] = [];
      const store = Object.assign(Object.create(base) as DirectoryObjectStore, {
        getRange: async (key: string, offset: number, length: number, into?: Buffer) => {
          if (key === gone && !failedOnce) {
            failedOnce = true;
            log.push('gone');
            throw new PvError(ErrorCodes.OBJECT_NOT_FOUND, `${key} is gone`, { details: { key } });
          }
          most = Math.max(most, ++inFlight);
          log.push(`start ${key.slice(-6)}`);
          await new Promise((r) => setTimeout(r, 50));
          try {
            return await base.getRange(key, offset, length, into);
          } finally {
            inFlight--;
            log.push(`end ${key.slice(-6)}`);
          }
        },
      });
      const r = await new Repository(store).tenant('acme');
      const f = new PageFetcher(r, PS, { maxInFlight: 4, gapBytes: 0 });
      const out = await fetch(f, fills.map((x) => sha(page(x))));
      fills.forEach((x, i) => expect(out.subarray(i * PS, (i + 1) * PS).equals(page(x))).toBe(true));
      // No GET starts from the failure until every GET of the first attempt has ended.
      const failure = log.indexOf('gone');
      const running = new Set(log.slice(0, failure).filter((x) => x.startsWith('start')).map((x) => x.slice(6)));
      for (const x of log.slice(0, failure)) if (x.startsWith('end')) running.delete(x.slice(4));
      expect(running.size).toBeGreaterThan(0); // the failure came while others were in flight
      const lastEnd = Math.max(...[...running].map((k) => log.indexOf(`end ${k}`, failure)));
      expect(log.slice(failure + 1, lastEnd).filter((x) => x.startsWith('start'))).toEqual([]);
      expect(most).toBeLessThanOrEqual(4);
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  });

  it('names a page no pack holds', async () => {
    await expect(fetch(new PageFetcher(t, PS), [sha(page(7))])).rejects.toMatchObject({ code: ErrorCodes.OBJECT_NOT_FOUND });
  });
});
