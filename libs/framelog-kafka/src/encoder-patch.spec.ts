import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const req = createRequire(__filename);

interface Produce {
  encode(): Promise<{ buffer: Buffer }>;
}
type ProduceVersion = (o: object) => { request: Produce };

/** A produce request (v7, as kafkajs sends a Kafka 4 broker) with records of awkward sizes. */
async function encodedRequest(): Promise<Buffer> {
  const { protocol } = req('kafkajs/src/protocol/requests/produce') as {
    protocol: (o: { version: number }) => ProduceVersion;
  };
  const values = [0, 1, 511, 512, 513, 4096, 70_000, 1_048_576].map((n, i) => randomBytes(n).fill(i + 1));
  const { request } = protocol({ version: 7 })({
    acks: -1, timeout: 30_000, compression: 0, producerEpoch: 0,
    topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages: values.map((value, i) => ({ key: `k${i}`, value, timestamp: 1_700_000_000_000 })) }] }],
  });
  return (await request.encode()).buffer;
}

describe('kafkajs encoder without zero-fill', () => {
  it('encodes a produce request byte for byte as kafkajs does', async () => {
    const Encoder = req('kafkajs/src/protocol/encoder.js') as { prototype: { ensureAvailable: unknown } };
    const original = Encoder.prototype.ensureAvailable;
    const before = await encodedRequest();
    const { patchKafkajsEncoder } = await import('./encoder-patch');
    patchKafkajsEncoder();
    expect(Encoder.prototype.ensureAvailable).not.toBe(original);
    const after = await encodedRequest();
    expect(after.length).toBeGreaterThan(1_048_576);
    expect(after.equals(before)).toBe(true);
  });
});
