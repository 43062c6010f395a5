import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';
import type { RecordHeaders } from '@pagevault/framelog';
import { KafkaFrameLog, textHeaders } from '@pagevault/framelog-kafka';
import type { ObjectStore } from '@pagevault/objstore';
import { Repository, keys, type FailedSnapshot } from '@pagevault/repo';
import { restoreFrames } from '@pagevault/restore';
import { openObjectStore } from '@pagevault/runtime';
import { kafkaBrokers, requireKafka, testAdmin } from '../framelog/kafka-env';
import { requireS3Server, s3Env, s3Store } from '../objstore/s3-env';

/**
 * One compactor scenario on the real services: its own topic (one partition unless told), consumer
 * group and tenants, so runs and files never see each other's records or objects; stop() deletes them.
 */
export class CompactorScenario {
  readonly tag = randomBytes(4).toString('hex');
  readonly topic: string;
  readonly group: string;
  readonly log: KafkaFrameLog;
  /** The bucket as the compactor app opens it (retries and a bound on requests in flight). */
  readonly store: ObjectStore = openObjectStore({ kind: 's3', ...s3Env });
  private readonly topics: string[] = [];
  private readonly groups: string[] = [];
  private readonly tenants: string[] = [];

  constructor(readonly label: string, partitions = 1) {
    this.topic = this.topicName(label);
    this.group = this.groupName(label);
    this.log = this.frameLog(this.topic, partitions);
  }

  topicName(label: string): string {
    const t = `pv-it-compactor-${Date.now()}-${this.tag}-${label}`;
    this.topics.push(t);
    return t;
  }

  groupName(label: string): string {
    const g = `pv-it-compactor-${this.tag}-${label}`;
    this.groups.push(g);
    return g;
  }

  frameLog(topic: string, partitions = 1): KafkaFrameLog {
    return new KafkaFrameLog({ brokers: kafkaBrokers, clientId: `pv-it-${this.label}`, topic, partitions });
  }

  tenant(label: string): string {
    const t = `it-${label}-${this.tag}`;
    this.tenants.push(t);
    return t;
  }

  async start(): Promise<void> {
    await requireKafka();
    await requireS3Server(s3Store());
    await this.log.ensureTopic();
  }

  /** Sends frames in order under one key and waits until the broker has them all. */
  async produce(key: string, frames: Buffer[]): Promise<void> {
    const p = this.log.producer();
    try {
      await p.send(key, frames);
      await p.flush();
    } finally {
      await p.close();
    }
  }

  async keys(prefix: string): Promise<string[]> {
    const out: string[] = [];
    for await (const o of this.store.list(prefix)) out.push(o.key);
    return out;
  }

  async failed(tenant: string, id: string): Promise<FailedSnapshot | undefined> {
    const key = keys.failed(tenant, id);
    if (!(await this.store.head(key))) return undefined;
    return JSON.parse((await this.store.get(key)).toString('utf8')) as FailedSnapshot;
  }

  /** The snapshot restored from the bucket by a fresh Repository (a restorer's view), as one stream. */
  async restore(tenant: string, id: string): Promise<Buffer> {
    const t = await new Repository(this.store).tenant(tenant);
    const m = await t.getManifest(id);
    const out: Buffer[] = [];
    for await (const f of restoreFrames(t, m)) out.push(f.raw);
    return Buffer.concat(out);
  }

  /** Packs named by the tenant's index files: the packs some snapshot can reach. */
  async indexedPacks(tenant: string): Promise<Set<string>> {
    const out = new Set<string>();
    for (const k of await this.keys(keys.indexes(tenant))) {
      const b = await this.store.get(k);
      // "PVIX" u32 version, u32 packs, then the packs' sha-256 (libs/repo/src/index-file.ts)
      for (let i = 0; i < b.readUInt32LE(8); i++) out.add(keys.pack(tenant, b.subarray(12 + i * 32, 44 + i * 32).toString('hex')));
    }
    return out;
  }

  /** The first `n` records of `topic` (a raw kafkajs consumer in a group of its own), key and value. */
  async readTopic(topic: string, n: number): Promise<{ key: string; value: Buffer; headers: RecordHeaders | undefined }[]> {
    const kafka = new Kafka({ clientId: `pv-it-${this.label}-reader`, brokers: kafkaBrokers, logLevel: logLevel.NOTHING });
    const reader = kafka.consumer({ groupId: this.groupName(`${topic}-reader`) });
    const got: { key: string; value: Buffer; headers: RecordHeaders | undefined }[] = [];
    await reader.connect();
    try {
      await reader.subscribe({ topic, fromBeginning: true });
      await reader.run({ eachMessage: async ({ message }) => void got.push({ key: message.key?.toString() ?? '', value: message.value ?? Buffer.alloc(0), headers: textHeaders(message.headers) }) });
      await waitFor(() => got.length >= n, 30_000, () => `${n} records of ${topic} (${got.length})`);
    } finally {
      await reader.disconnect();
    }
    return got;
  }

  /** The group's committed offset of partition 0 (undefined: never committed) and the topic's end. */
  async offsets(topic = this.topic, group = this.group): Promise<{ committed: bigint | undefined; end: bigint }> {
    const admin = testAdmin();
    await admin.connect();
    try {
      const [t] = await admin.fetchOffsets({ groupId: group, topics: [topic] });
      const c = t?.partitions.find((p) => p.partition === 0)?.offset;
      const end = (await admin.fetchTopicOffsets(topic)).find((p) => p.partition === 0)!.high;
      return { committed: c === undefined || c === '-1' ? undefined : BigInt(c), end: BigInt(end) };
    } finally {
      await admin.disconnect();
    }
  }

  /** Waits until the group has committed everything on the topic (the compactor is done with it). */
  async allCommitted(timeoutMs = 30_000): Promise<bigint> {
    let last: { committed: bigint | undefined; end: bigint } | undefined;
    await waitFor(async () => {
      last = await this.offsets();
      return last.committed === last.end;
    }, timeoutMs, () => `group ${this.group} committed ${last?.committed} of ${last?.end}`);
    return last!.end;
  }

  async stop(): Promise<void> {
    await this.log.close();
    const admin = testAdmin();
    await admin.connect();
    await admin.deleteTopics({ topics: this.topics }).catch(() => undefined);
    await admin.deleteGroups(this.groups).catch(() => undefined);
    await admin.disconnect();
    for (const t of this.tenants) for (const k of await this.keys(`t/${t}/`)) await this.store.delete(k);
  }
}

export async function waitFor(ok: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
