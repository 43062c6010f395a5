import { randomBytes } from 'node:crypto';
import { captureSnapshot } from '@pagevault/capture';
import { CompactionService } from '@pagevault/compaction';
import { SnapshotWriter, decodeFrame, idFromHex, type Frame } from '@pagevault/format';
import { KafkaFrameLog } from '@pagevault/framelog-kafka';
import { Repository, type Manifest } from '@pagevault/repo';
import { openObjectStore } from '@pagevault/runtime';
import { shipSnapshot } from '@pagevault/shipper';
import { kafkaBrokers, requireKafka, testAdmin } from '../framelog/kafka-env';
import { requireS3Server, s3Env, s3Store } from '../objstore/s3-env';

/**
 * The fleet pipeline on the real services: a Kafka topic of its own, a tenant of its own in the real
 * bucket, a CompactionService consuming the topic as the compactor app does, and an agent-side
 * shipSnapshot producing into it.
 */
export class FleetPipeline {
  readonly tag = randomBytes(4).toString('hex');
  readonly tenant = `e2e-${this.tag}`;
  readonly topic = `pv-e2e-${Date.now()}-${this.tag}`;
  readonly log = new KafkaFrameLog({ brokers: kafkaBrokers, clientId: 'pv-e2e', topic: this.topic, partitions: 2 });
  readonly store = openObjectStore({ kind: 's3', ...s3Env });
  /** The restorer's own view of the bucket (a separate Repository, as in a separate service). */
  readonly repo = new Repository(this.store);
  private compaction: CompactionService | undefined;
  private readonly waiters = new Map<string, { resolve(m: Manifest): void; reject(e: Error): void }>();
  readonly failures: { id: string; code: string; reason: string }[] = [];

  async start(): Promise<void> {
    await requireKafka();
    await requireS3Server(s3Store());
    await this.log.ensureTopic();
    this.compaction = new CompactionService(this.log, new Repository(this.store), {
      groupId: `pv-e2e-${this.tag}`,
      events: {
        committed: (m) => this.waiters.get(m.snapshotId)?.resolve(m),
        failed: (id, code, reason) => {
          this.failures.push({ id, code, reason });
          this.waiters.get(id)?.reject(new Error(`${code}: ${reason}`));
        },
      },
    });
    await this.compaction.start();
  }

  /** Captures pid through Kafka and resolves with the committed manifest. */
  async snapshot(pid: number, parent?: { id: string; hashes: import('@pagevault/capture').PageHashTable }) {
    let waiter!: Promise<Manifest>;
    const producer = this.log.producer();
    const shipped = await shipSnapshot({
      producer, maxFrameBytes: this.log.maxFrameBytes,
      capture: (writer, drain) => {
        const id = Buffer.from(writer.snapshotId).toString('hex');
        waiter = new Promise((resolve, reject) => this.waiters.set(id, { resolve, reject }));
        return captureSnapshot({ pid, writer, drain, tenant: this.tenant, host: 'e2e-host', wantHashes: true, ...(parent ? { parent: { id: idFromHex(parent.id), hashes: parent.hashes } } : {}) });
      },
    });
    await producer.close();
    const manifest = await waiter;
    return { manifest, capture: shipped.stats };
  }

  async stop(): Promise<void> {
    await this.compaction?.stop();
    const admin = testAdmin();
    await admin.connect();
    await admin.deleteTopics({ topics: [this.topic] }).catch(() => undefined);
    await admin.disconnect();
    for await (const o of this.store.list(`t/${this.tenant}/`)) await this.store.delete(o.key);
  }
}

/** A direct full dump of a (stopped) process with a given id and start time: the byte-identity reference. */
export async function directDump(pid: number, m: Manifest): Promise<Buffer> {
  const frames: Buffer[] = [];
  const writer = new SnapshotWriter({ snapshotId: idFromHex(m.snapshotId), emit: (f) => frames.push(f) });
  await captureSnapshot({ pid, writer, tenant: m.tenant, host: m.host, startTimeMs: m.startTimeMs });
  return Buffer.concat(frames);
}

export async function collect(frames: AsyncIterable<Frame>): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const f of frames) out.push(decodeFrame(f.raw));
  return out;
}
