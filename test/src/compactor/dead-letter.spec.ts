import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { CompactionService, DeadLetters, UNIDENTIFIED } from '@pagevault/compaction';
import { ErrorCodes } from '@pagevault/errors';
import { Repository, keys, type Manifest } from '@pagevault/repo';
import { kafkaBrokers, testAdmin } from '../framelog/kafka-env';
import { CompactorScenario, waitFor } from './compactor-env';
import { syntheticProcess, writeSnapshot } from './synthetic-memory';

// Records no agent writes, through the real Kafka: no key at all (garbage, an empty value, a frame whose
// header still names its snapshot but whose CRC is off), and a bad frame too large for the dead-letter
// topic, which the broker refuses for good. None may stall the partition: a good snapshot after them
// commits, the offset moves past everything, and the dead letters that fit are in the dead-letter topic
// under the snapshot they name, or `unidentified`.

const sc = new CompactorScenario('dead-letter');
const tenant = sc.tenant('dead-letter');
const dlqTopic = sc.topicName('dlq');
const DLQ_MAX_MESSAGE_BYTES = 4096;
const snapshot = () => writeSnapshot(syntheticProcess({ tenant, randomPages: 40, repeatedPages: 10, patterns: 2 }));
const A = snapshot();
const B = snapshot(); // its second frame, flipped, goes keyless: the header still names B
const C = snapshot(); // its first page chunk (≫ 4 KiB), flipped, is too big for the dead-letter topic
const D = snapshot(); // a bad frame after C's: must reach the dead-letter topic through a new producer
const flip = (f: Buffer) => {
  const bad = Buffer.from(f);
  bad[bad.length - 1]! ^= 0x40; // the frame's last byte: its CRC no longer matches
  return bad;
};
const badB = flip(B.frames[1]!);
const badC = flip(C.frames[2]!);
const badD = flip(D.frames[0]!);
const garbage = Buffer.from('not a frame at all, and no key either');

let service: CompactionService;
let deadLetters: DeadLetters;
const committed: Manifest[] = [];
const failed: { id: string; code: string }[] = [];
interface Warned { snapshot: string; code: string; partition: number; offset: string; reason: string }
const warned: Warned[] = [];
const refused: { snapshot: string; error: string }[] = [];
let handled = 0;
let sent = 0;

beforeAll(async () => {
  await sc.start();
  // The dead-letter topic allows smaller records than the frame topic: the broker itself says no.
  const admin = testAdmin();
  await admin.connect();
  try {
    await admin.createTopics({
      waitForLeaders: true,
      topics: [{ topic: dlqTopic, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: String(DLQ_MAX_MESSAGE_BYTES) }] }],
    });
  } finally {
    await admin.disconnect();
  }
  const dlqLog = sc.frameLog(dlqTopic);
  deadLetters = new DeadLetters(() => dlqLog.producer(), {
    warn: (f) => void warned.push(f as Warned),
    error: (f) => void refused.push(f as { snapshot: string; error: string }),
  }, { sourceTopic: sc.topic });
  service = new CompactionService(sc.log, new Repository(sc.store), {
    groupId: sc.group,
    deadLetter: deadLetters.write,
    events: {
      committed: (m) => void committed.push(m),
      failed: (id, code) => void failed.push({ id, code }),
      frames: (n) => (handled += n),
    },
  });
  await service.start();

  // Raw kafkajs, as a foreign producer would write: records without a key.
  const kafka = new Kafka({ clientId: 'pv-it-foreign-producer', brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
  const foreign = kafka.producer();
  await foreign.connect();
  try {
    const records = [
      { value: garbage },
      { value: Buffer.alloc(0) },
      { value: badB },
    ];
    await foreign.send({ topic: sc.topic, acks: -1, messages: records.map((r) => ({ ...r, partition: 0 })) });
    sent += records.length;
  } finally {
    await foreign.disconnect();
  }
  await sc.produce(C.id, [C.frames[0]!, C.frames[1]!, badC]);
  await sc.produce(D.id, [badD]);
  await sc.produce(A.id, A.frames);
  sent += 3 + 1 + A.frames.length;
  await waitFor(() => handled >= sent, 30_000, () => `the compactor to handle ${sent} records (${handled})`);
}, 90_000);

afterAll(async () => {
  await service?.stop();
  await deadLetters?.close();
  await sc.stop();
}, 60_000);

describe('records that name no snapshot, and dead letters the topic refuses', () => {
  it('commits the good snapshot after them and moves the offset past everything', async () => {
    await waitFor(() => committed.length === 1, 30_000, () => `A to commit (failed: ${JSON.stringify(failed)})`);
    expect(committed[0]!.snapshotId).toBe(A.id);
    expect(await sc.allCommitted()).toBe(BigInt(sent));
    expect((await sc.restore(tenant, A.id)).equals(A.stream)).toBe(true);
  });

  it('fails the snapshots whose header it could read, and nothing for the records that name none', () => {
    const byId = (a: { id: string }, b: { id: string }) => a.id.localeCompare(b.id);
    expect([...failed].sort(byId)).toEqual([
      { id: B.id, code: ErrorCodes.FRAME_BAD_CRC },
      { id: C.id, code: ErrorCodes.FRAME_BAD_CRC },
      { id: D.id, code: ErrorCodes.FRAME_BAD_CRC },
    ].sort(byId));
    expect(failed.some((f) => f.id === '')).toBe(false);
  });

  it('dead-letters every bad record, the unnamed ones as unidentified', () => {
    expect(warned.map((w) => w.snapshot)).toEqual([UNIDENTIFIED, UNIDENTIFIED, B.id, C.id, D.id]);
    expect(refused.map((r) => r.snapshot)).toEqual([C.id]);
    expect(refused[0]!.error).toMatch(/larger than the max message size|too large/i);
  });

  it('writes the dead letters that fit to the dead-letter topic, as they came (the empty record too), after the refused one too', async () => {
    const got = await sc.readTopic(dlqTopic, 4);
    expect(got.map((g) => g.key)).toEqual([UNIDENTIFIED, UNIDENTIFIED, B.id, D.id]);
    expect(got[0]!.value.equals(garbage)).toBe(true);
    expect(got[1]!.value.length).toBe(0);
    expect(got[2]!.value.equals(badB)).toBe(true);
    expect(got[3]!.value.equals(badD)).toBe(true);
    // Each says where it was in the frame topic and why it was refused, as the compactor logged it.
    const logged = warned.filter((w) => w.snapshot !== C.id); // not the refused one
    expect(got.map((g) => g.headers)).toEqual(logged.map((w) => ({
      'pv-dlq-topic': sc.topic, 'pv-dlq-partition': String(w.partition), 'pv-dlq-offset': w.offset, 'pv-dlq-code': w.code, 'pv-dlq-reason': w.reason,
    })));
    expect(new Set(got.map((g) => g.headers!['pv-dlq-offset'])).size).toBe(4);
    // Nothing of the failed snapshots is visible in the bucket but their failed records.
    expect(await sc.keys(keys.manifests(tenant))).toEqual([keys.manifest(tenant, A.id)]);
  });
});
