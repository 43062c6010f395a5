import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompactionService } from '@pagevault/compaction';
import { Repository, keys, type Manifest } from '@pagevault/repo';
import { shipSnapshot } from '@pagevault/shipper';
import { CompactorScenario, waitFor } from './compactor-env';
import { HookedObjectStore } from './hooked-object-store';
import {
  distinctPages, relocated, syntheticProcess, withChangedPages, withEditedPages, writeMemory, writeSnapshot, type SyntheticProcess, type WriteOptions,
} from './synthetic-memory';

// Content-addressed dedup through the real Kafka into the real bucket: the dedup scope is the tenant,
// not the process, the host or the address; and a snapshot stores only the pages no earlier one did.

const sc = new CompactorScenario('dedup');
const tenant = sc.tenant('dedup');
const other = sc.tenant('dedup-other');
const edits = sc.tenant('dedup-edits');
let service: CompactionService;
const committed = new Map<string, Manifest>();
const failed: string[] = [];
/** Every listing the compactor asked of the bucket. */
const listed: string[] = [];

// 1500 random pages, 500 pages of 10 contents: 1510 distinct pages, 2000 data pages.
const memory = syntheticProcess({ tenant, pid: 101, host: 'host-a', randomPages: 1500, repeatedPages: 500, patterns: 10 });
// 1 % of the data pages (20 of 2000) rewritten.
const changed = Array.from({ length: 20 }, (_, i) => i * 75);

/**
 * Ships the memory as the agent does (shipSnapshot over the real producer, the capture driving the
 * shipper's writer) and resolves with the committed manifest and the stream a restore must give back:
 * the full stream of the same memory under the same id (an incremental snapshot restores as full).
 */
async function ship(p: SyntheticProcess, o: WriteOptions = {}): Promise<{ manifest: Manifest; stream: Buffer }> {
  const producer = sc.log.producer();
  let id: string;
  try {
    id = (await shipSnapshot({
      producer, maxFrameBytes: sc.log.maxFrameBytes,
      capture: async (writer, drain) => {
        writeMemory(writer, p, o);
        await drain();
      },
    })).snapshotId;
  } finally {
    await producer.close();
  }
  await waitFor(() => committed.has(id) || failed.includes(id), 30_000, () => `snapshot ${id} to commit`);
  expect(failed).toEqual([]);
  return { manifest: committed.get(id)!, stream: writeSnapshot(p, { snapshotId: Buffer.from(id, 'hex') }).stream };
}

beforeAll(async () => {
  await sc.start();
  const store = new HookedObjectStore(sc.store, { onList: (prefix) => listed.push(prefix) });
  // No cache of recent pages: the bases of delta pages are read back from the bucket (the cache is the
  // repository's unit tests' business).
  service = new CompactionService(sc.log, new Repository(store, { recentPagesBytes: 0 }), {
    groupId: sc.group,
    events: { committed: (m) => committed.set(m.snapshotId, m), failed: (id) => failed.push(id) },
  });
  await service.start();
}, 60_000);

afterAll(async () => {
  await service?.stop();
  await sc.stop();
}, 60_000);

describe('dedup on S3', () => {
  const shipped: Manifest[] = [];

  it('stores every distinct page of the first snapshot of a tenant once', async () => {
    const { manifest, stream } = await ship(memory);
    shipped.push(manifest);
    expect(manifest.counts.dataPages).toBe(2000);
    expect(manifest.counts.newPages).toBe(distinctPages(memory));
    expect(manifest.counts.newPages).toBe(1510);
    expect((await sc.restore(tenant, manifest.snapshotId)).equals(stream)).toBe(true);
  });

  it('stores nothing for the same memory in another process on another host at other addresses', async () => {
    const twin = relocated(memory, { pid: 202, host: 'host-b' });
    const { manifest, stream } = await ship(twin);
    shipped.push(manifest);
    expect(manifest.counts.dataPages).toBe(2000);
    expect(manifest.counts.newPages).toBe(0);
    expect(manifest.counts.newBytes).toBe(0);
    expect((await sc.restore(tenant, manifest.snapshotId)).equals(stream)).toBe(true);
  });

  it('stores the same memory again under another tenant: dedup never crosses tenants', async () => {
    const { manifest, stream } = await ship({ ...memory, tenant: other });
    expect(manifest.tenant).toBe(other);
    expect(manifest.counts.newPages).toBe(1510);
    expect((await sc.restore(other, manifest.snapshotId)).equals(stream)).toBe(true);
  });

  it('stores only the changed pages of a full snapshot in which 1 % of the pages changed', async () => {
    const { manifest, stream } = await ship(withChangedPages(memory, changed));
    shipped.push(manifest);
    expect(manifest.counts.dataPages).toBe(2000);
    expect(manifest.counts.newPages).toBe(changed.length);
    expect((await sc.restore(tenant, manifest.snapshotId)).equals(stream)).toBe(true);
  });

  it('stores only the changed pages of an incremental snapshot, the rest resolved from its parent', async () => {
    const parent = shipped[0]!;
    const next = withChangedPages(memory, changed.map((i) => i + 1));
    const { manifest, stream } = await ship(next, { parent: { snapshotId: Buffer.from(parent.snapshotId, 'hex'), memory } });
    shipped.push(manifest);
    expect(manifest.mode).toBe('incremental');
    expect(manifest.counts.parentPages).toBe(2000 - changed.length);
    expect(manifest.counts.dataPages).toBe(2000);
    expect(manifest.counts.newPages).toBe(changed.length);
    expect((await sc.restore(tenant, manifest.snapshotId)).equals(stream)).toBe(true);
  });

  it('packs pages into a few large objects, never one object per page', async () => {
    const stored = 1510 + 2 * changed.length;
    // A restorer's view of the tenant: exactly the distinct pages, each once.
    expect((await new Repository(sc.store).tenant(tenant)).index.size).toBe(stored);
    const packs = await sc.keys(keys.packs(tenant));
    // Packs are sealed at each snapshot's end (or at 12 MiB): at most one per snapshot here, and none
    // for the snapshot that stored nothing.
    expect(packs.length).toBeLessThanOrEqual(shipped.length);
    expect(packs.length).toBe(shipped.filter((m) => m.counts.newPages > 0).length);
    expect(packs.length * 100).toBeLessThan(stored);
    expect(new Set(packs)).toEqual(await sc.indexedPacks(tenant));
    expect(await sc.keys(keys.packs(other))).toHaveLength(1);
  });

  it('reads the index of each tenant once and never lists the whole bucket to find out whether a snapshot is new', async () => {
    // A listing of t/ costs one request per 1000 objects of every tenant: per snapshot, that would make
    // the compactor slower the more the bucket holds. A snapshot-begin names its tenant; two HEADs do.
    // Besides, each snapshot that takes its tenant's lock lists the tenant's lock folder (docs/storage.md#locks).
    expect(listed.filter((p) => p.includes('/index/'))).toEqual([keys.indexes(tenant), keys.indexes(other)]);
    expect(new Set(listed.filter((p) => !p.includes('/index/')))).toEqual(new Set([keys.locks(tenant), keys.locks(other)]));
  });
});

describe('delta pages on S3', () => {
  it('stores the edited pages of an incremental against their parent pages, read back from the bucket, and restores them', async () => {
    const base = { ...syntheticProcess({ tenant: edits, pid: 303, host: 'host-c', randomPages: 400, repeatedPages: 0, patterns: 1 }) };
    const first = await ship(base);
    const edited = Array.from({ length: 100 }, (_, i) => i * 4);
    const parent = { snapshotId: Buffer.from(first.manifest.snapshotId, 'hex'), memory: base };
    const deltas = await ship(withEditedPages(base, edited), { parent });
    expect(deltas.manifest.counts.newPages).toBe(100);
    expect(deltas.manifest.counts.deltaPages).toBe(100);
    expect(deltas.manifest.counts.basesFetched).toBe(100);
    expect((await sc.restore(edits, deltas.manifest.snapshotId)).equals(deltas.stream)).toBe(true);
    // The same count of pages rewritten whole: stored at their full compressed size.
    const whole = await ship(withChangedPages(base, edited.map((i) => i + 1)), { parent });
    expect(whole.manifest.counts.newPages).toBe(100);
    expect(deltas.manifest.counts.newBytes * 20).toBeLessThan(whole.manifest.counts.newBytes);
  });
});
