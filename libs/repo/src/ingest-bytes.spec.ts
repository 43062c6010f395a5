import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { SnapshotIngest } from './ingest';
import { keys } from './keys';
import type { Manifest } from './manifest';
import { Repository } from './repository';
import { BASE, PS, snapshotFrames } from './test-helpers';

describe('a snapshot\'s stored bytes (counts.newBytes)', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-newbytes-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const packBytes = async (store: DirectoryObjectStore) => {
    let n = 0;
    for await (const o of store.list(keys.packs('acme'))) n += o.size;
    return n;
  };

  it('counts its share of the packs when two of one tenant are ingested together, not every pack written meanwhile', async () => {
    const store = new DirectoryObjectStore(dir);
    const repo = new Repository(store, { packTargetBytes: 256 << 10 });
    // A: 3 MiB of random pages; B: 1 MiB. Their frames interleave, as two agents' on one partition.
    const a = snapshotFrames(1, [{ start: BASE, data: randomBytes(768 * PS) }], 1000);
    const b = snapshotFrames(2, [{ start: BASE, data: randomBytes(256 * PS) }], 1000);
    const ia = new SnapshotIngest(repo, a.id);
    const ib = new SnapshotIngest(repo, b.id);
    const done: Manifest[] = [];
    for (let i = 0; i < Math.max(a.frames.length, b.frames.length); i++) {
      const [ma, mb] = await Promise.all([a.frames[i] && ia.accept(a.frames[i]!), b.frames[i] && ib.accept(b.frames[i]!)]);
      for (const m of [ma, mb]) if (m) done.push(m);
    }
    expect(done.length).toBe(2);
    const [A, B] = [done.find((m) => m.pid === 1)!, done.find((m) => m.pid === 2)!];
    const total = await packBytes(store);
    // Random pages do not compress: each counts about its own pages' bytes, and together the packs' bytes.
    expect(A.counts.newBytes + B.counts.newBytes).toBeGreaterThan(total * 0.95);
    expect(A.counts.newBytes + B.counts.newBytes).toBeLessThan(total * 1.05);
    expect(B.counts.newBytes).toBeLessThan(total * 0.4);
    expect(A.counts.newBytes / B.counts.newBytes).toBeGreaterThan(2);
  });

  it('counts every pack it wrote when ingested alone', async () => {
    const store = new DirectoryObjectStore(dir);
    const repo = new Repository(store, { packTargetBytes: 256 << 10 });
    const a = snapshotFrames(1, [{ start: BASE, data: randomBytes(256 * PS) }], 1000);
    const ing = new SnapshotIngest(repo, a.id);
    let m: Manifest | undefined;
    for (const f of a.frames) m = (await ing.accept(f)) ?? m;
    expect(m!.counts.newBytes).toBe(await packBytes(store));
  });
});
