import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompactionService } from '@pagevault/compaction';
import { ErrorCodes, PvError } from '@pagevault/errors';
import type { ObjectInfo, ObjectStore } from '@pagevault/objstore';
import { Repository, keys, type Manifest } from '@pagevault/repo';
import { CompactorScenario, waitFor } from './compactor-env';
import { distinctPages, syntheticProcess, writeSnapshot } from './synthetic-memory';

// The bucket goes away for a while in the middle of a snapshot (as an S3 endpoint does when it restarts)
// and comes back. The compactor must neither fail the snapshot nor lose a frame: the partition is
// delivered again from its committed offset and the snapshot is written once, byte-identical.

/** The real bucket, refusing every request while `down`, as the S3 store does when its endpoint is gone. */
class OutageStore implements ObjectStore {
  down = false;
  refused = 0;
  puts = 0;
  /** Runs before each put (the test takes the store down from here). */
  beforePut?: (key: string, n: number) => void;

  constructor(private readonly inner: ObjectStore) {}

  get description(): string {
    return this.inner.description;
  }

  private check(what: string): void {
    if (!this.down) return;
    this.refused++;
    throw new PvError(ErrorCodes.STORE_UNAVAILABLE, `test outage: ${what} refused`, { retriable: true });
  }

  async put(key: string, body: Uint8Array, sha256?: string): Promise<void> {
    this.beforePut?.(key, ++this.puts);
    this.check(`put ${key}`);
    await this.inner.put(key, body, sha256);
  }

  async get(key: string): Promise<Buffer> {
    this.check(`get ${key}`);
    return this.inner.get(key);
  }

  async getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    this.check(`get ${key}`);
    return this.inner.getRange(key, offset, length, into);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    this.check(`head ${key}`);
    return this.inner.head(key);
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    this.check(`list ${prefix}`);
    yield* this.inner.list(prefix);
  }

  async delete(key: string): Promise<void> {
    this.check(`delete ${key}`);
    return this.inner.delete(key);
  }
}

const sc = new CompactorScenario('outage');
const store = new OutageStore(sc.store);
let service: CompactionService;
const committed = new Map<string, Manifest>();
const failed = new Map<string, string>();

beforeAll(async () => {
  await sc.start();
  // Packs of 1 MiB, so packs are stored all along the snapshot.
  service = new CompactionService(sc.log, new Repository(store, { packTargetBytes: 1 << 20 }), {
    groupId: sc.group,
    events: { committed: (m) => committed.set(m.snapshotId, m), failed: (id, code) => failed.set(id, code) },
  });
  await service.start();
}, 60_000);

afterAll(async () => {
  await service?.stop();
  store.down = false;
  await sc.stop();
}, 60_000);

/** Takes the store down for `ms` from the put `when` picks (that put is refused). */
function outageFrom(when: (key: string, n: number) => boolean, ms: number): Promise<void> {
  return new Promise((resolve) => {
    store.beforePut = (key, n) => {
      if (!when(key, n)) return;
      store.beforePut = undefined;
      store.down = true;
      setTimeout(() => {
        store.down = false;
        resolve();
      }, ms);
    };
  });
}

describe('a compactor whose bucket goes away mid-snapshot', () => {
  it('writes the snapshot once it is back, byte-identical, even when the outage comes past the first 32 MiB fetched', async () => {
    const tenant = sc.tenant('mid');
    // 12 000 random pages (47 MiB of frames): the consumer hands them over in slices of 32 MiB, and the
    // outage begins in the second slice, far from the snapshot-begin.
    const memory = syntheticProcess({ tenant, randomPages: 12_000, repeatedPages: 200, patterns: 4 });
    const snap = writeSnapshot(memory);
    const packs = keys.packs(tenant);
    const outage = outageFrom((key, n) => key.startsWith(packs) && n >= 36, 3_000);
    await sc.produce(snap.id, snap.frames);
    await outage;
    expect(store.refused).toBeGreaterThan(0);
    await waitFor(() => committed.has(snap.id) || failed.has(snap.id), 120_000, () => `snapshot ${snap.id} to end`);
    expect(failed.get(snap.id)).toBeUndefined();
    // The packs made durable before the outage are not stored again: the replay deduplicates against them.
    const { newPages } = committed.get(snap.id)!.counts;
    expect(newPages).toBeGreaterThan(0);
    expect(newPages).toBeLessThan(distinctPages(memory));
    expect((await new Repository(sc.store).tenant(tenant)).index.size).toBe(distinctPages(memory));
    expect(await sc.keys(keys.manifests(tenant))).toEqual([keys.manifest(tenant, snap.id)]);
    expect(await sc.keys(keys.failures(tenant))).toEqual([]);
    expect((await sc.restore(tenant, snap.id)).equals(snap.stream)).toBe(true);
    expect(await sc.allCommitted()).toBe(await sc.offsets().then((o) => o.end));
  }, 180_000);

  it('records a bad snapshot as failed for its own cause once the bucket is back, when the outage hit its failed record', async () => {
    const tenant = sc.tenant('bad');
    const snap = writeSnapshot(syntheticProcess({ tenant, randomPages: 600, repeatedPages: 40, patterns: 2 }));
    // A flipped byte in a middle frame's body: its CRC fails. The store goes down as the failed record is
    // put, so it cannot be written at first.
    const bad = Math.floor(snap.frames.length / 2);
    snap.frames[bad] = Buffer.from(snap.frames[bad]!);
    snap.frames[bad]![snap.frames[bad]!.length - 1]! ^= 0xff;
    const outage = outageFrom((key) => key === keys.failed(tenant, snap.id), 3_000);
    const refusedBefore = store.refused;
    await sc.produce(snap.id, snap.frames);
    await outage;
    expect(store.refused).toBeGreaterThan(refusedBefore);
    await waitFor(() => committed.has(snap.id) || failed.has(snap.id), 60_000, () => `snapshot ${snap.id} to end`);
    expect(failed.get(snap.id)).toBe(ErrorCodes.FRAME_BAD_CRC);
    expect(committed.has(snap.id)).toBe(false);
    expect((await sc.failed(tenant, snap.id))?.code).toBe(ErrorCodes.FRAME_BAD_CRC);
    expect(await sc.keys(keys.manifests(tenant))).toEqual([]);
    expect(await sc.allCommitted()).toBe(await sc.offsets().then((o) => o.end));
  }, 120_000);
});
