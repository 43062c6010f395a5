import { describe, expect, it } from 'vitest';
import { Repository, keys } from '@pagevault/repo';
import { kafkaBrokers } from '../framelog/kafka-env';
import { CompactorScenario, waitFor } from './compactor-env';
import { CompactorProcess } from './compactor-process';
import { distinctPages, syntheticProcess, writeSnapshot } from './synthetic-memory';

// A compactor process killed with SIGKILL at the two points where the bucket and the log disagree,
// then a second compactor process in the same consumer group. The snapshot: 1024 random pages (4 MiB),
// 512 pages of 8 repeated contents and two zero runs, produced as one stream on a one-partition topic.

async function scenario(label: string) {
  const sc = new CompactorScenario(label);
  await sc.start();
  const tenant = sc.tenant(label);
  const memory = syntheticProcess({ tenant, randomPages: 1024, repeatedPages: 512, patterns: 8 });
  return { sc, tenant, memory, snap: writeSnapshot(memory), child: { brokers: kafkaBrokers, topic: sc.topic, group: sc.group } };
}

describe('a compactor process killed with SIGKILL', () => {
  it('after its first pack and before any manifest: the next process writes the snapshot once, and it restores byte-identical', async () => {
    const { sc, tenant, memory, snap, child } = await scenario('kill-after-pack');
    // Packs of 1 MiB, so the first one is sealed and stored in the middle of the snapshot.
    const config = { ...child, packTargetBytes: 1 << 20 };
    try {
      const first = new CompactorProcess({ ...config, crashAfterPutOf: keys.packs(tenant) });
      await sc.produce(snap.id, snap.frames);
      const pack = (await first.waitForLine(/^CRASH /)).slice('CRASH '.length);
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

      // It died with its first pack stored and nothing that references it: no index file, no manifest,
      // no failed record. A pack sealed after it may have landed too (a pack's upload starts when it is
      // sealed, beside the ones before it), and page-map nodes of VMAs ingested meanwhile: like the pack,
      // they are content-addressed and unreachable until an index file and a manifest name them. Its
      // shared lock stays too (a prune is refused until it is stale); another compactor shares the tenant.
      expect(pack.startsWith(keys.packs(tenant))).toBe(true);
      const stored = await sc.keys(`t/${tenant}/`);
      expect(stored).toContain(pack);
      expect(stored.filter((k) => k.startsWith(keys.locks(tenant)))).toEqual([expect.stringMatching(/\/locks\/shared-/)]);
      const unreferenced = [keys.packs(tenant), keys.mapNodes(tenant), keys.locks(tenant)];
      expect(stored.filter((k) => !unreferenced.some((prefix) => k.startsWith(prefix)))).toEqual([]);
      const crashedPacks = stored.filter((k) => k.startsWith(keys.packs(tenant)));
      expect((await sc.offsets()).committed ?? 0n).toBe(0n);

      const second = new CompactorProcess(config);
      try {
        // Nothing of the first attempt reached an index, so every distinct page is stored again.
        expect(await second.waitForLine(/^(COMMITTED|FAILED) /)).toBe(`COMMITTED ${snap.id} ${distinctPages(memory)}`);
        expect(await sc.allCommitted()).toBe(BigInt(snap.frames.length));
      } finally {
        await second.stop();
      }
      expect(second.lines.filter((l) => l.startsWith('FAILED '))).toEqual([]);
      expect(await sc.keys(keys.manifests(tenant))).toEqual([keys.manifest(tenant, snap.id)]);
      expect(await sc.keys(keys.failures(tenant))).toEqual([]);
      expect((await sc.restore(tenant, snap.id)).equals(snap.stream)).toBe(true);
      // Packs are named by their content: the replay rewrote the crashed packs under the same names, so
      // the crash left no unreachable pack behind.
      const packs = await sc.keys(keys.packs(tenant));
      expect(packs).toEqual(expect.arrayContaining(crashedPacks));
      expect(new Set(packs)).toEqual(await sc.indexedPacks(tenant));
    } finally {
      await sc.stop();
    }
  }, 90_000);

  it('after the manifest and before the offset commit: the snapshot is visible once, and the next process skips it', async () => {
    const { sc, tenant, snap, child } = await scenario('kill-after-manifest');
    try {
      const first = new CompactorProcess({ ...child, crashAfterPutOf: keys.manifests(tenant) });
      await sc.produce(snap.id, snap.frames.slice(0, -1));
      await first.waitForFrames(snap.frames.length - 1);

      // Every frame but snapshot-end consumed: the snapshot does not exist yet.
      expect(await sc.keys(keys.manifests(tenant))).toEqual([]);
      expect(await (await new Repository(sc.store).tenant(tenant)).listManifests()).toEqual([]);
      expect(await sc.keys(keys.failures(tenant))).toEqual([]);

      await sc.produce(snap.id, snap.frames.slice(-1));
      expect(await first.waitForLine(/^CRASH /)).toBe(`CRASH ${keys.manifest(tenant, snap.id)}`);
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });
      expect(first.lines.filter((l) => l.startsWith('COMMITTED '))).toEqual([]);
      const manifest = await sc.store.get(keys.manifest(tenant, snap.id));
      // The offset never passed the snapshot's begin: the log will deliver all of it again.
      expect((await sc.offsets()).committed ?? 0n).toBe(0n);

      const second = new CompactorProcess(child);
      try {
        expect(await sc.allCommitted()).toBe(BigInt(snap.frames.length));
        await second.waitForFrames(snap.frames.length);
      } finally {
        await second.stop();
      }
      // The replay found the manifest at the snapshot's begin and dropped the rest of its frames: no
      // second commit, no failure, the manifest byte for byte as the first process wrote it.
      expect(second.lines.filter((l) => /^(COMMITTED|FAILED) /.test(l))).toEqual([]);
      expect((await sc.store.get(keys.manifest(tenant, snap.id))).equals(manifest)).toBe(true);
      expect(await sc.keys(keys.manifests(tenant))).toEqual([keys.manifest(tenant, snap.id)]);
      expect(await sc.keys(keys.failures(tenant))).toEqual([]);
      expect((await sc.restore(tenant, snap.id)).equals(snap.stream)).toBe(true);
    } finally {
      await sc.stop();
    }
  }, 90_000);

  it('with a replay that starts inside a snapshot finished before the crash: its stray frames are dropped', async () => {
    const { sc, tenant, memory, snap: X, child } = await scenario('kill-mid-replay');
    const Y = writeSnapshot({ ...memory, pid: memory.pid + 1 });
    try {
      const first = new CompactorProcess({ ...child, crashAfterPutOf: keys.manifest(tenant, X.id) });
      // Y0 Y1 X0 Y2 … Y-end X1: Y commits while X is open, so the offset stops at X0 (offset 2), after Y's begin.
      await sc.produce(Y.id, Y.frames.slice(0, 2));
      await sc.produce(X.id, X.frames.slice(0, 1));
      await sc.produce(Y.id, Y.frames.slice(2));
      await sc.produce(X.id, X.frames.slice(1, 2));
      await first.waitForLine(new RegExp(`^COMMITTED ${Y.id} `));
      await first.waitForFrames(Y.frames.length + 2);
      await waitFor(async () => (await sc.offsets()).committed === 2n, 10_000, () => 'the offset to stop at X0');

      await sc.produce(X.id, X.frames.slice(2));
      expect(await first.waitForLine(/^CRASH /)).toBe(`CRASH ${keys.manifest(tenant, X.id)}`);
      expect(await first.exited).toEqual({ code: null, signal: 'SIGKILL' });

      // The replay starts at X0: X is found committed at its begin; Y's frames after X0 come without
      // their begin, and are found to belong to a committed snapshot (not failed as out of order).
      const second = new CompactorProcess(child);
      try {
        expect(await sc.allCommitted()).toBe(BigInt(X.frames.length + Y.frames.length));
        await second.waitForFrames(X.frames.length + Y.frames.length - 2);
      } finally {
        await second.stop();
      }
      expect(second.lines.filter((l) => /^(COMMITTED|FAILED) /.test(l))).toEqual([]);
      expect((await sc.keys(keys.manifests(tenant))).sort()).toEqual([X.id, Y.id].map((id) => keys.manifest(tenant, id)).sort());
      expect(await sc.keys(keys.failures(tenant))).toEqual([]);
      for (const s of [X, Y]) expect((await sc.restore(tenant, s.id)).equals(s.stream), s.id).toBe(true);
    } finally {
      await sc.stop();
    }
  }, 90_000);
});
