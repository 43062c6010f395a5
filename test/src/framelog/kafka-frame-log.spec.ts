import { ErrorCodes } from '@pagevault/errors';
import { describeFrameLogConformance } from '@pagevault/framelog/conformance';
import { KafkaFrameLog, patchKafkajsCrc32c, patchKafkajsRecordBatch, type KafkaFrameLogOptions } from '@pagevault/framelog-kafka';
import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { compress as zstdCompress } from 'zstd-napi';
import { deleteTopic, kafkaBrokers, requireKafka, uniqueTopic } from './kafka-env';
import { pausableSockets } from './pausable-sockets';

const PARTITIONS = 3;
let n = 0;

function kafkaLog(topic: string, patch: Partial<KafkaFrameLogOptions> = {}): KafkaFrameLog {
  return new KafkaFrameLog({
    brokers: kafkaBrokers,
    clientId: 'pv-it-framelog',
    topic,
    partitions: PARTITIONS,
    ...patch,
  });
}

// Every test gets a topic of its own (created by ensureTopic, deleted after) and the adapter's defaults,
// so the 1 MiB − 4 KiB frame goes through the broker's default max.message.bytes.
describeFrameLogConformance(`KafkaFrameLog on ${kafkaBrokers.join(',')}`, async () => {
  await requireKafka();
  const topic = uniqueTopic(String(n++));
  const sockets = pausableSockets();
  const log = kafkaLog(topic, { socketFactory: sockets.socketFactory });
  try {
    await log.ensureTopic();
  } catch (e) {
    await log.close();
    await deleteTopic(topic).catch(() => undefined);
    throw e;
  }
  return {
    log,
    partitions: PARTITIONS,
    holdAcks: sockets.hold,
    close: async () => {
      await log.close();
      await deleteTopic(topic);
    },
  };
}, { handsBackAcknowledged: true });

describe('KafkaFrameLog produce path', () => {
  it('patched kafkajs before its first produce request: native CRC32C, record batches checksummed over their parts', () => {
    // The conformance suite above sent megabyte frames through these patches, and the broker checks
    // every record batch's CRC32C: a wrong one is refused (CORRUPT_MESSAGE), not stored.
    expect(patchKafkajsCrc32c()).toBe('patched');
    expect(patchKafkajsRecordBatch()).toBe('patched');
  });
});

describe('KafkaFrameLog.ensureTopic on a real broker', () => {
  it('creates the topic once and accepts it on the next call', async () => {
    await requireKafka();
    const topic = uniqueTopic('ensure');
    const log = kafkaLog(topic);
    try {
      await log.ensureTopic();
      await log.ensureTopic();
    } finally {
      await log.close();
      await deleteTopic(topic);
    }
  });

  it('creates the topic with the retention it is given, and leaves an existing topic\'s own', async () => {
    await requireKafka();
    const topic = uniqueTopic('retention');
    const log = kafkaLog(topic, { retentionMs: 5 * 3_600_000 });
    const again = kafkaLog(topic, { retentionMs: 9 * 3_600_000 });
    const admin = new Kafka({ clientId: 'pv-it-retention', brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
    const retention = async () => {
      const d = await admin.describeConfigs({ resources: [{ type: 2 /* TOPIC */, name: topic, configNames: ['retention.ms'] }], includeSynonyms: false });
      return d.resources[0]!.configEntries.find((e) => e.configName === 'retention.ms')?.configValue;
    };
    try {
      await admin.connect();
      await log.ensureTopic();
      expect(await retention()).toBe(String(5 * 3_600_000));
      await again.ensureTopic();
      expect(await retention()).toBe(String(5 * 3_600_000));
    } finally {
      await Promise.all([log.close(), again.close(), admin.disconnect()]);
      await deleteTopic(topic);
    }
  });

  it('refuses a topic that exists with another partition count, naming both counts', async () => {
    await requireKafka();
    const topic = uniqueTopic('count');
    const two = kafkaLog(topic, { partitions: 2 });
    const three = kafkaLog(topic);
    try {
      await two.ensureTopic();
      const e = await three.ensureTopic().catch((err: unknown) => err);
      expect(e).toMatchObject({ code: ErrorCodes.CONFIG_INVALID });
      expect((e as Error).message).toMatch(new RegExp(`${topic} has 2 partitions but 3 are configured`));
    } finally {
      await Promise.all([two.close(), three.close()]);
      await deleteTopic(topic);
    }
  });
});

describe('KafkaFrameLog frame compression on a real broker', () => {
  /** A frame-like value that compresses: "PVFR", an index, then repeated text. */
  const compressible = (i: number, bytes = 256 * 1024) => {
    const b = Buffer.alloc(bytes, `frame ${i} of a heap that compresses; `);
    b.write(`PVFR${i}/`, 0, 'latin1');
    return b;
  };

  /** Every value on the topic as the broker holds it, read with bare kafkajs (not the adapter). */
  async function rawValues(topic: string, count: number): Promise<Buffer[]> {
    const c = new Kafka({ clientId: 'pv-it-raw', brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).consumer({ groupId: `${topic}-raw` });
    const got: { p: number; o: bigint; v: Buffer }[] = [];
    await c.connect();
    await c.subscribe({ topics: [topic], fromBeginning: true });
    const done = new Promise<void>((resolve) => {
      void c.run({
        eachMessage: async ({ partition, message }) => {
          got.push({ p: partition, o: BigInt(message.offset), v: message.value! });
          if (got.length === count) resolve();
        },
      });
    });
    await done;
    await c.disconnect();
    return got.sort((a, b) => a.p - b.p || Number(a.o - b.o)).map((g) => g.v);
  }

  /** What the adapter's consumer hands its handler, in offset order of one key's partition. */
  async function delivered(log: KafkaFrameLog, count: number): Promise<Buffer[]> {
    const out: Buffer[] = [];
    const consumer = log.consumer(`pv-it-z-${n++}`);
    await new Promise<void>((resolve, reject) => {
      consumer.start({
        onBatch: async (b) => {
          for (const r of b.records) out.push(r.value);
          if (out.length >= count) resolve();
        },
      }).catch(reject);
    });
    await consumer.stop();
    return out;
  }

  it('sends frames that compress to a third as zstd, the rest as they are, and delivers every one as it was sent', async () => {
    await requireKafka();
    const topic = uniqueTopic('zstd');
    const log = kafkaLog(topic);
    try {
      await log.ensureTopic();
      // A frame that does not compress leaves the next few untried: the random ones go last.
      const frames = [compressible(0), compressible(1, log.maxFrameBytes), randomBytes(200 * 1024), randomBytes(4096)];
      const p = log.producer();
      const handedBack: Buffer[] = [];
      await p.send('ab'.repeat(16), frames, (fs) => handedBack.push(...fs));
      await p.flush();
      await p.close();
      expect(new Set(handedBack)).toEqual(new Set(frames));
      const raw = await rawValues(topic, frames.length);
      const zstdMagic = (v: Buffer) => v.readUInt32LE(0) === 0xfd2fb528;
      expect(raw.map(zstdMagic)).toEqual([true, true, false, false]);
      expect(raw[1]!.length).toBeLessThan(frames[1]!.length / 20);
      expect(raw[2]!.equals(frames[2]!)).toBe(true);
      const got = await delivered(log, frames.length);
      expect(got.map((v, i) => v.equals(frames[i]!))).toEqual([true, true, true, true]);
    } finally {
      await log.close();
      await deleteTopic(topic);
    }
  });

  it('hands a damaged or oversized zstd record to the handler as it came, and goes on', async () => {
    await requireKafka();
    const topic = uniqueTopic('zbad');
    const log = kafkaLog(topic, { partitions: 1 });
    const producer = new Kafka({ clientId: 'pv-it-raw', brokers: kafkaBrokers, logLevel: logLevel.NOTHING }).producer();
    try {
      await log.ensureTopic();
      const good = compressible(7);
      const z = zstdCompress(good, { checksumFlag: true });
      const damaged = Buffer.from(z);
      damaged[damaged.length >> 1] ^= 0xff;
      const bomb = zstdCompress(Buffer.alloc(log.maxFrameBytes + 1));
      await producer.connect();
      await producer.send({ topic, messages: [damaged, bomb, z].map((value) => ({ key: 'cd'.repeat(16), value, partition: 0 })) });
      const got = await delivered(log, 3);
      expect(got[0]!.equals(damaged)).toBe(true);
      expect(got[1]!.equals(bomb)).toBe(true);
      expect(got[2]!.equals(good)).toBe(true);
    } finally {
      await producer.disconnect();
      await log.close();
      await deleteTopic(topic);
    }
  });

  it("sends frames as they are with compression 'none'", async () => {
    await requireKafka();
    const topic = uniqueTopic('znone');
    const log = kafkaLog(topic, { compression: 'none' });
    try {
      await log.ensureTopic();
      const p = log.producer();
      await p.send('ef'.repeat(16), [compressible(1)]);
      await p.close();
      const [raw] = await rawValues(topic, 1);
      expect(raw!.equals(compressible(1))).toBe(true);
    } finally {
      await log.close();
      await deleteTopic(topic);
    }
  });
});

describe('KafkaFrameConsumer group membership on a real broker', () => {
  it('makes a batch stale once the group has dropped its member (the batch ran past the session timeout)', async () => {
    await requireKafka();
    const topic = uniqueTopic('evicted');
    const log = kafkaLog(topic, { partitions: 1, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 1_000 });
    const c = log.consumer(`pv-it-evicted-${randomBytes(3).toString('hex')}`);
    try {
      await log.ensureTopic();
      const p = log.producer();
      await p.send('k', [randomBytes(100)]);
      await p.close();
      let seen: { before: boolean; heartbeat: string; after: boolean } | undefined;
      await c.start({
        onBatch: async (_b, ctl) => {
          if (seen) return;
          const before = ctl.isStale();
          // No heartbeat for longer than the session timeout: the coordinator drops this member.
          await new Promise((r) => setTimeout(r, 9_000));
          const heartbeat = await ctl.heartbeat().then(() => 'ok', (e: { type?: string; message?: string }) => e.type ?? e.message ?? 'error');
          seen = { before, heartbeat, after: ctl.isStale() };
        },
      });
      for (let i = 0; i < 300 && !seen; i++) await new Promise((r) => setTimeout(r, 100));
      expect(seen?.before).toBe(false);
      expect(seen?.heartbeat).not.toBe('ok');
      expect(seen?.after).toBe(true);
    } finally {
      await c.stop();
      await log.close();
      await deleteTopic(topic);
    }
  }, 60_000);
});

describe('KafkaFrameLog consume path', () => {
  it('delivers a partition again from its committed offset after its handler failed while Kafka was unreachable, not from where kafkajs had read', async () => {
    await requireKafka();
    const topic = uniqueTopic('rewind');
    const sockets = pausableSockets();
    const log = kafkaLog(topic, { partitions: 1, socketFactory: sockets.socketFactory, retries: 8 });
    const c = log.consumer(`pv-it-rewind-${randomBytes(3).toString('hex')}`);
    const p = log.producer();
    const seen: string[] = [];
    let failNext = false;
    let failedAt = -1;
    try {
      await log.ensureTopic();
      await p.send('k', [Buffer.from('r0')]);
      await p.flush();
      await c.start({
        onBatch: async (b) => {
          seen.push(...b.records.map((r) => r.offset));
          if (!failNext) return;
          // The handler fails (as a commit fails through an outage) while Kafka refuses every connection:
          // the adapter cannot look up the committed offset to seek to.
          failNext = false;
          failedAt = seen.length;
          const allow = sockets.refuse();
          setTimeout(allow, 3_000);
          throw new Error('test: handler failed during an outage');
        },
      });
      for (let i = 0; i < 300 && seen.length < 1; i++) await new Promise((r) => setTimeout(r, 100));
      expect(seen).toEqual(['0']); // read, and resolved: kafkajs's position is past it; nothing committed
      failNext = true;
      await p.send('k', [Buffer.from('r1')]);
      await p.flush();
      for (let i = 0; i < 600 && (failedAt < 0 || seen.length <= failedAt); i++) await new Promise((r) => setTimeout(r, 100));
      // After the outage the partition starts again at the committed offset (none: the earliest), so
      // the handler sees record 0 again before 1, not 1 alone.
      expect(seen.slice(0, failedAt)).toEqual(['0', '1']);
      expect(seen[failedAt]).toBe('0');
    } finally {
      await p.close().catch(() => undefined);
      await c.stop();
      await log.close();
      await deleteTopic(topic);
    }
  }, 120_000);
});
