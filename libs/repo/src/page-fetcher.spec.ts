import { hash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { DirectoryObjectStore } from '@pagevault/objstore';
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

  it('names a page no pack holds', async () => {
    await expect(fetch(new PageFetcher(t, PS), [sha(page(7))])).rejects.toMatchObject({ code: ErrorCodes.OBJECT_NOT_FOUND });
  });
});
