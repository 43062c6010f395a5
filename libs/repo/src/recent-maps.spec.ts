import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { PageKind, PageList } from './page-list';
import { RecentMaps } from './recent-maps';
import { Repository } from './repository';
import { BASE, PS, countingStore, ingest, readBack } from './test-helpers';

const listOf = (pages: number, at = BASE) => {
  const l = new PageList(PS);
  l.add(at, pages, PageKind.Data, randomBytes(pages * 32), 0);
  return { list: l, order: l.order('t') };
};

describe('RecentMaps', () => {
  it('finds a map by root sha and place, evicts the least recently used past its bytes, keeps nothing too large', () => {
    const one = listOf(64);
    const bytes = one.list.hashes.length + one.list.starts.byteLength + one.list.counts.byteLength + one.list.kinds.byteLength + one.list.hashAt.byteLength + one.order.byteLength;
    const m = new RecentMaps(bytes * 2);
    m.put({ sha: 'a', level: 0, first: 0 }, one);
    m.put({ sha: 'b', level: 0, first: 0 }, listOf(64));
    expect(m.size).toBe(2);
    expect(m.get({ sha: 'a', level: 0, first: 1024 })).toBeUndefined(); // same leaf bytes, another place
    expect(m.get({ sha: 'a', level: 0, first: 0 })).toBe(one); // now the most recent
    m.put({ sha: 'c', level: 0, first: 0 }, listOf(64));
    expect(m.get({ sha: 'b', level: 0, first: 0 })).toBeUndefined();
    expect(m.get({ sha: 'a', level: 0, first: 0 })).toBe(one);
    expect(m.bytes).toBeLessThanOrEqual(bytes * 2);
    m.put({ sha: 'huge', level: 0, first: 0 }, listOf(4096));
    expect(m.get({ sha: 'huge', level: 0, first: 0 })).toBeUndefined();
    expect(m.size).toBe(2);
  });
});

describe('an incremental snapshot', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-maps-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });


  it('reads its parent’s maps from the compactor that ingested the parent, else from the store, with the same result', async () => {
    const vmas = Array.from({ length: 40 }, (_, i) => ({ start: BASE + i * 0x100_0000, data: randomBytes(8 * PS), zeroPages: 2 }));
    const edited = vmas.map((v, i) => (i % 3 ? v : { ...v, data: Buffer.concat([randomBytes(PS), v.data.subarray(PS)]) }));
    const warm = countingStore(dir);
    const repo = new Repository(warm.store);
    const parent = await ingest(repo, 7, vmas, 1);
    const before = warm.n['get maps'] ?? 0;
    const child = await ingest(repo, 7, edited, 2, 'acme', parent.snapshotId);
    expect((warm.n['get maps'] ?? 0) - before).toBe(0);
    expect(repo.recentMaps.size).toBeGreaterThanOrEqual(40);

    const cold = countingStore(dir);
    const fresh = new Repository(cold.store, { recentMapsBytes: 0 });
    const again = await ingest(fresh, 7, edited, 3, 'acme', parent.snapshotId);
    expect(cold.n['get maps']).toBe(1); // the parent's one node pack, read whole
    // Same memory, same parent: the same maps, whichever way the parent's were read.
    expect(again.vmas.map((v) => v.map)).toEqual(child.vmas.map((v) => v.map));
    expect(child.counts).toMatchObject({ parentPages: 0, dataPages: 40 * 8, zeroPages: 80 });
    // Each changed page found its base in the parent VMA at its address (the same pages again: stored).
    expect(child.counts.deltaPages).toBe(14);
    expect(again.counts.newPages).toBe(0);
    const t = await repo.tenant('acme');
    expect(Buffer.concat(await readBack(t, child)).equals(Buffer.concat(edited.map((v) => v.data)))).toBe(true);
  });

  it('resolves "same as parent" a parent run at a time, into the map the pages themselves give', async () => {
    const data = randomBytes(300 * PS);
    const edited = Buffer.from(data);
    randomBytes(PS).copy(edited, 100 * PS);
    const cases = [new Repository(new DirectoryObjectStore(join(dir, 'kept'))), new Repository(new DirectoryObjectStore(join(dir, 'read')), { recentMapsBytes: 0 })];
    const want = await ingest(new Repository(new DirectoryObjectStore(join(dir, 'sent'))), 9, [{ start: BASE, data: edited, zeroPages: 50 }], 1);
    for (const repo of cases) {
      const parent = await ingest(repo, 9, [{ start: BASE, data, zeroPages: 50 }], 1);
      // Page 100 changed; the rest, data and zero pages, in runs across the parent's data and zero runs.
      const child = await ingest(repo, 9, [{ start: BASE, data: edited, zeroPages: 50, sameAsParent: [[0, 100], [101, 249]] }], 2, 'acme', parent.snapshotId);
      expect(child.counts).toMatchObject({ parentPages: 349, dataPages: 300, zeroPages: 50, newPages: 1 });
      expect(child.vmas[0]!.map).toEqual(want.vmas[0]!.map);
    }
    const bad = ingest(cases[0]!, 9, [{ start: BASE, data: edited, zeroPages: 50, sameAsParent: [[0, 360]] }], 3, 'acme', want.snapshotId);
    await expect(bad).rejects.toMatchObject({ code: 'PV_PARENT_MISSING' });
  });
});
