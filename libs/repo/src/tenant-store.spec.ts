import { hash, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryObjectStore, type ObjectStore } from '@pagevault/objstore';
import { keys } from './keys';
import { Repository } from './repository';
import { packOptions } from './tenant-store';
import { BASE, PS, ingest } from './test-helpers';

const PS = 4096;
const sha = (b: Buffer) => hash('sha256', b, 'buffer') as unknown as Buffer;

/** A directory store whose pack PUTs wait until released: uploads that are slow, in a controlled way. */
class GatedStore implements Partial<ObjectStore> {
  readonly waiting: (() => void)[] = [];
  packPuts = 0;
  constructor(private readonly inner: DirectoryObjectStore) {}
  get description() {
    return this.inner.description;
  }
  async put(key: string, body: Uint8Array) {
    if (key.includes('/packs/')) {
      this.packPuts++;
      await new Promise<void>((r) => this.waiting.push(r));
    }
    return this.inner.put(key, body);
  }
  get = (k: string) => this.inner.get(k);
  getRange = (k: string, o: number, l: number) => this.inner.getRange(k, o, l);
  head = (k: string) => this.inner.head(k);
  list = (p: string) => this.inner.list(p);
  delete = (k: string) => this.inner.delete(k);
  release() {
    for (const r of this.waiting.splice(0)) r();
  }
}

describe('TenantStore uploads behind ingest', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-tenant-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('keeps at most maxInFlight packs uploading, dedups against them, and makes all durable on flush', async () => {
    const store = new GatedStore(new DirectoryObjectStore(dir));
    const t = await new Repository(store as unknown as ObjectStore, { packTargetBytes: 64 << 10 }).tenant('acme');
    const pages = Array.from({ length: 80 }, () => randomBytes(PS));
    let behind: Promise<void> | undefined;
    let i = 0;
    for (; i < pages.length && !behind; i++) {
      expect(t.addPage(sha(pages[i]!), pages[i]!, 0)).toBe(true);
      if (!t.packFull) continue;
      const p = t.flushBehind(1);
      const state = await Promise.race([p.then(() => 'returned'), new Promise((r) => setTimeout(() => r('waiting'), 50))]);
      if (state === 'waiting') behind = p;
    }
    // The second sealed pack had to wait: the first is still uploading (one in flight allowed). Both
    // uploads have begun (they overlap); neither pack is named by an index file yet.
    expect(behind).toBeDefined();
    expect(store.packPuts).toBe(2);
    for await (const o of store.list(keys.indexes('acme'))) expect.fail(`index file ${o.key} before its pack is durable`);
    // A page of a pack still uploading is not stored again.
    expect(t.addPage(sha(pages[0]!), pages[0]!, 0)).toBe(false);
    const released = setInterval(() => store.release(), 5);
    try {
      await behind;
      for (; i < pages.length; i++) t.addPage(sha(pages[i]!), pages[i]!, 0);
      await t.flush();
    } finally {
      clearInterval(released);
    }
    for (const p of pages) expect(t.index.has(sha(p))).toBe(true);
    const indexFiles = [];
    for await (const o of store.list(keys.indexes('acme'))) indexFiles.push(o.key);
    expect(indexFiles.length).toBe(store.packPuts);
  });

  it('lets pack uploads overlap but completes flushes in order: no pack is indexed before the ones sealed before it', async () => {
    const store = new GatedStore(new DirectoryObjectStore(dir));
    const t = await new Repository(store as unknown as ObjectStore, { packTargetBytes: 16 << 10 }).tenant('acme');
    const fill = () => {
      while (!t.packFull) {
        const p = randomBytes(PS);
        t.addPage(sha(p), p, 0);
      }
    };
    const indexFiles = async () => {
      const out: string[] = [];
      for await (const o of store.list(keys.indexes('acme'))) out.push(o.key);
      return out;
    };
    const order: number[] = [];
    fill();
    const first = t.flush().then(() => order.push(1));
    fill();
    const second = t.flush().then(() => order.push(2));
    for (let i = 0; i < 100 && store.waiting.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
    expect(store.packPuts).toBe(2); // both uploads under way at once
    store.waiting[1]!(); // the later pack lands first
    await new Promise((r) => setTimeout(r, 50));
    expect(order).toEqual([]);
    expect(await indexFiles()).toEqual([]);
    store.waiting[0]!();
    await Promise.all([first, second]);
    expect(order).toEqual([1, 2]);
    expect((await indexFiles()).length).toBe(2);
  });

  it('poisons the store when an upload fails: the waiting caller and the next flush both throw; the repository then opens a fresh one', async () => {
    const inner = new DirectoryObjectStore(dir);
    let full = false;
    const failing = Object.assign(Object.create(inner) as ObjectStore, {
      put: (key: string, body: Uint8Array) => (full && key.includes('/packs/') ? Promise.reject(new Error('disk full')) : inner.put(key, body)),
    });
    const repo = new Repository(failing, { packTargetBytes: 16 << 10 });
    const t = await repo.tenant('acme');
    const stored = randomBytes(PS);
    t.addPage(sha(stored), stored, 0);
    await t.flush(); // a pack stored before the disk filled up
    full = true;
    let err: unknown;
    for (let i = 0; i < 40 && !err; i++) {
      const p = randomBytes(PS);
      t.addPage(sha(p), p, 0);
      if (t.packFull) err = await t.flushBehind(0).then(() => undefined, (e: unknown) => e);
    }
    expect(String(err)).toContain('disk full');
    await expect(t.flush()).rejects.toThrow('disk full');
    expect(t.poisoned).toBe(true);

    full = false; // the disk has room again
    await expect(t.flush()).rejects.toThrow('disk full'); // the poisoned store stays poisoned
    const fresh = await repo.tenant('acme');
    expect(fresh).not.toBe(t);
    expect(fresh.poisoned).toBe(false);
    expect(fresh.index.has(sha(stored))).toBe(true); // its index comes from the bucket
    expect(fresh.index.size).toBe(1); // nothing of the failed packs
    const p = randomBytes(PS);
    fresh.addPage(sha(p), p, 0);
    await fresh.flush();
    expect(await repo.tenant('acme')).toBe(fresh);
  });
});

describe('packOptions', () => {
  it('takes an option given as undefined as not given (env knobs left unset)', () => {
    expect(packOptions({ recentPagesBytes: undefined, recentMapsBytes: 1 << 20 })).toMatchObject({ recentPagesBytes: 1 << 30, recentMapsBytes: 1 << 20, delta: true });
  });
});

describe('Repository.tenant with maxOpenTenants', () => {
  it('keeps the most recently used stores open, never one it has ingested into, and reopens a closed one', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pv-tenants-'));
    try {
      const repo = new Repository(new DirectoryObjectStore(dir), { maxOpenTenants: 2 });
      const busy = await repo.tenant('busy');
      const held = await repo.lockShared(busy);
      const a = await repo.tenant('a');
      for (let i = 0; i < 50; i++) await repo.tenant(`probe-${i}`); // a client trying names
      expect(repo.openTenants).toBe(2);
      expect(await repo.tenant('busy')).toBe(busy); // ingested into: kept
      expect(await repo.tenant('a')).not.toBe(a); // closed, opened again
      await held.release();
      expect(() => new Repository(new DirectoryObjectStore(dir), { maxOpenTenants: 0 })).toThrow(/maxOpenTenants/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('counts the packs it wrote into stores it has closed since (packsWritten only grows)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pv-tenants-'));
    try {
      const repo = new Repository(new DirectoryObjectStore(dir), { maxOpenTenants: 1 });
      const written = await ingest(repo, 1, [{ start: BASE, data: randomBytes(8 * PS) }], 1000, 'first');
      const first = await repo.packsWritten();
      expect(first).toBeGreaterThan(0);
      const second = await ingest(repo, 2, [{ start: BASE, data: randomBytes(8 * PS) }], 2000, 'second');
      const both = await repo.packsWritten();
      expect(both).toBeGreaterThan(first);
      // The stores closed (idle) as others open: what they wrote still counts.
      for (let i = 0; i < 3; i++) await repo.tenant(`probe-${i}`);
      expect(await repo.packsWritten()).toBe(both);
      expect([written.snapshotId, second.snapshotId].every(Boolean)).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
