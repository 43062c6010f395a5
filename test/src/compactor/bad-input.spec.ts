import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CompactionService, DeadLetters } from '@pagevault/compaction';
import { ErrorCodes } from '@pagevault/errors';
import { newSnapshotId } from '@pagevault/format';
import { Repository, keys, type Manifest } from '@pagevault/repo';
import { CompactorScenario, waitFor } from './compactor-env';
import { syntheticProcess, withChangedPages, writeSnapshot, type SyntheticSnapshot } from './synthetic-memory';

// Bad snapshots interleaved with good ones on ONE partition, under their own keys, through the real Kafka
// into the real bucket: A valid, B with a flipped payload byte, C cut off before its end, E with an
// unknown format version, F incremental to a parent that does not exist, G naming a tenant that is not a
// valid name (its stream is fine: only the repository refuses it) — then, after C's timeout, D valid.
// Each bad one is failed on its own; the partition keeps going and its offset moves past all of them.

const TIMEOUT_MS = 3_000;
const sc = new CompactorScenario('bad-input');
const tenant = sc.tenant('bad-input');
const dlqTopic = sc.topicName('dlq');
const dlqLog = sc.frameLog(dlqTopic);
let deadLetters: DeadLetters;
let service: CompactionService;
const committed: Manifest[] = [];
const failed: { id: string; code: string }[] = [];
const deadLettered: { key: string; code: string; offset: string }[] = [];
/** Commits and failures in the order the compactor reported them. */
const timeline: string[] = [];
let handled = 0;

const snapshot = () => writeSnapshot(syntheticProcess({ tenant, randomPages: 300, repeatedPages: 100, patterns: 4 }));
const A = snapshot();
// Frame 2 is the first page-chunk: the begin (and so the tenant) got through, the damage is later.
const B = corrupt(snapshot(), 2, (f) => (f[36 + 5000] ^= 0x01));
const C = snapshot();
C.frames = C.frames.slice(0, -3); // stops inside the last VMA: no vma-end, no snapshot-end
const E = corrupt(snapshot(), 2, (f) => (f[4] = 2));
const baseF = syntheticProcess({ tenant, randomPages: 300, repeatedPages: 100, patterns: 4 });
const F = writeSnapshot(withChangedPages(baseF, [0, 7]), { parent: { snapshotId: newSnapshotId(), memory: baseF } });
const G = writeSnapshot(syntheticProcess({ tenant: 'Acme Corp', randomPages: 30, repeatedPages: 10, patterns: 2 }));
const D = snapshot();

function corrupt(s: SyntheticSnapshot, frame: number, damage: (f: Buffer) => void): SyntheticSnapshot & { bad: Buffer } {
  const bad = Buffer.from(s.frames[frame]!);
  damage(bad);
  s.frames[frame] = bad;
  return { ...s, bad };
}

beforeAll(async () => {
  await sc.start();
  await dlqLog.ensureTopic();
  deadLetters = new DeadLetters(() => dlqLog.producer(), {
    warn: (f) => {
      const { snapshot, code, offset } = f as { snapshot: string; code: string; offset: string };
      deadLettered.push({ key: snapshot, code, offset });
    },
    error: (f) => {
      throw new Error(`dead letter refused: ${JSON.stringify(f)}`);
    },
  });
  service = new CompactionService(sc.log, new Repository(sc.store), {
    groupId: sc.group,
    snapshotTimeoutMs: TIMEOUT_MS,
    deadLetter: deadLetters.write, // as the compactor app does
    events: {
      committed: (m) => {
        committed.push(m);
        timeline.push(m.snapshotId);
      },
      failed: (id, code) => {
        failed.push({ id, code });
        timeline.push(id);
      },
      frames: (n) => (handled += n),
    },
  });
  await service.start();

  // One frame of each in turn, each under its own key: A0 B0 C0 E0 F0 G0 A1 B1 ...
  const streams = [A, B, C, E, F, G];
  const p = sc.log.producer();
  for (let i = 0; streams.some((s) => i < s.frames.length); i++) {
    for (const s of streams) if (i < s.frames.length) await p.send(s.id, [s.frames[i]!]);
  }
  await p.close();
  const sent = streams.reduce((n, s) => n + s.frames.length, 0);
  await waitFor(() => handled >= sent, 30_000, () => `the compactor to handle ${sent} frames (${handled})`);
}, 90_000);

afterAll(async () => {
  await service?.stop();
  await deadLetters?.close();
  await dlqLog.close();
  await sc.stop();
}, 60_000);

describe('bad snapshots interleaved with good ones on one partition', () => {
  it('commits the valid snapshot and fails each bad one on its own, with its code', async () => {
    expect(committed.map((m) => m.snapshotId)).toEqual([A.id]);
    const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
    expect([...failed].sort(byId)).toEqual([
      { id: B.id, code: ErrorCodes.FRAME_BAD_CRC },
      { id: E.id, code: ErrorCodes.FRAME_UNKNOWN_VERSION },
      { id: F.id, code: ErrorCodes.PARENT_MISSING },
      { id: G.id, code: ErrorCodes.INVALID_ARGUMENT },
    ].sort(byId));
    expect(service.openSnapshots).toBe(1); // C, still waiting for its end
    // A's end came last, after every failure: the partition went on past each of them.
    expect(timeline.at(-1)).toBe(A.id);
  });

  it('keeps the offset at the begin of the snapshot still open', async () => {
    // C's begin is the third record of the partition (A0 B0 C0 ...).
    await waitFor(async () => (await sc.offsets()).committed === 2n, 10_000, () => 'the offset to stop at C0');
  });

  it('fails a snapshot whose end never comes after its timeout, with no later record on its partition, and goes on', async () => {
    // Nothing else is produced: the compactor's own timer must notice that C's frames stopped.
    await waitFor(async () => (await sc.failed(tenant, C.id)) !== undefined, TIMEOUT_MS + 10_000, () => `C to be failed by the timer`);
    // The quiet partition's offset moves past C too (it was held at C's begin): no lag is left to report.
    expect(await sc.allCommitted(10_000)).toBe(BigInt([A, B, C, E, F, G].reduce((n, s) => n + s.frames.length, 0)));
    expect(await service.lag()).toBe(0n);
    await sc.produce(D.id, D.frames);
    await waitFor(() => committed.length === 2, 30_000, () => `D to commit (failed: ${JSON.stringify(failed)})`);
    expect(committed.map((m) => m.snapshotId)).toEqual([A.id, D.id]);
    expect(failed.at(-1)).toEqual({ id: C.id, code: ErrorCodes.TIMEOUT });
    expect(service.openSnapshots).toBe(0);
  });

  it('commits the offset past everything it handled', async () => {
    const end = await sc.allCommitted();
    expect(end).toBe(BigInt([A, B, C, D, E, F, G].reduce((n, s) => n + s.frames.length, 0)));
  });

  it('leaves exactly the good snapshots visible, each restoring byte-identical', async () => {
    expect((await sc.keys(keys.manifests(tenant))).sort()).toEqual([A.id, D.id].map((id) => keys.manifest(tenant, id)).sort());
    for (const s of [A, D]) expect((await sc.restore(tenant, s.id)).equals(s.stream), s.id).toBe(true);
  });

  it('writes a failed record naming each bad snapshot and its code', async () => {
    const codes = { [B.id]: ErrorCodes.FRAME_BAD_CRC, [C.id]: ErrorCodes.TIMEOUT, [E.id]: ErrorCodes.FRAME_UNKNOWN_VERSION, [F.id]: ErrorCodes.PARENT_MISSING };
    expect((await sc.keys(keys.failures(tenant))).sort()).toEqual(Object.keys(codes).map((id) => keys.failed(tenant, id)).sort());
    for (const [id, code] of Object.entries(codes)) {
      expect(await sc.failed(tenant, id)).toMatchObject({ format: 'pagevault.failed.v1', snapshotId: id, tenant, code, partition: 0 });
    }
    // G's tenant cannot name a prefix in the bucket: the dead-letter topic is its only trace.
    expect((await sc.keys(keys.tenants)).filter((k) => k.includes(G.id))).toEqual([]);
    // C's record says where its frames begin on the partition, for whoever replays it by hand.
    expect((await sc.failed(tenant, C.id))?.firstOffset).toBe('2');
  });

  it('puts the offending frames in the dead-letter topic', async () => {
    // The timeout has no frame to blame: it is dead-lettered (logged) but sends nothing.
    expect(deadLettered.map((d) => [d.key, d.code])).toEqual(expect.arrayContaining([
      [B.id, ErrorCodes.FRAME_BAD_CRC],
      [E.id, ErrorCodes.FRAME_UNKNOWN_VERSION],
      [F.id, ErrorCodes.PARENT_MISSING],
      [G.id, ErrorCodes.INVALID_ARGUMENT],
      [C.id, ErrorCodes.TIMEOUT],
    ]));
    expect(deadLettered).toHaveLength(5);

    const got = await sc.readTopic(dlqTopic, 4);
    expect((await sc.offsets(dlqTopic, sc.group)).end).toBe(4n);
    const byKey = new Map(got.map((g) => [g.key, g.value]));
    expect(byKey.get(B.id)?.equals(B.bad)).toBe(true);
    expect(byKey.get(E.id)?.equals(E.bad)).toBe(true);
    expect(byKey.get(F.id)?.equals(F.frames[0]!)).toBe(true); // its begin, which names the missing parent
    expect(byKey.get(G.id)?.equals(G.frames[0]!)).toBe(true); // its begin, which names the bad tenant
  });
});
