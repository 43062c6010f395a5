import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const req = createRequire(__filename);

interface Produce {
  encode(): Promise<{ buffer: Buffer }>;
}
type ProduceVersion = (o: object) => { request: Produce };

const BIG = 64 * 1024;
/** Record values of awkward sizes: around the encoder's 512-byte start and around BIG (referenced, not copied). */
const values = [0, 1, 511, 512, 513, 4096, BIG - 1, BIG, BIG + 1, 70_000, 1_048_576].map((n, i) => randomBytes(n).fill(i + 1));

/** A produce request (v7, as kafkajs sends a Kafka 4 broker): two topics, partitions of one small and of many records. */
async function encodedRequest(): Promise<Buffer> {
  const { protocol } = req('kafkajs/src/protocol/requests/produce') as {
    protocol: (o: { version: number }) => ProduceVersion;
  };
  const messages = (vs: Buffer[]) => vs.map((value, i) => ({ key: `k${i}`, value, timestamp: 1_700_000_000_000 }));
  const { request } = protocol({ version: 7 })({
    acks: -1, timeout: 30_000, compression: 0, producerEpoch: 0,
    topicData: [
      { topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages: messages(values) }, { partition: 1, firstSequence: 5, messages: messages(values.slice(0, 2)) }] },
      { topic: 'u', partitions: [{ partition: 3, firstSequence: 0, messages: messages([values[7]!]) }] },
    ],
  });
  return (await request.encode()).buffer;
}

describe('kafkajs encoder without zero-fill, large pieces by reference', () => {
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
    // And again: patched encoders are reused by nothing, but a second request must not see the first's parts.
    expect((await encodedRequest()).equals(before)).toBe(true);
  });

  it('keeps a large value by reference until the bytes are asked for in one piece', async () => {
    const { patchKafkajsEncoder } = await import('./encoder-patch');
    patchKafkajsEncoder();
    const Encoder = req('kafkajs/src/protocol/encoder.js') as new () => {
      writeBuffer(b: Buffer): unknown; writeInt32(n: number): unknown; writeEncoder(e: unknown): unknown; size(): number; buffer: Buffer; parts?: Buffer[];
    };
    const inner = new Encoder();
    inner.writeInt32(7);
    const big = randomBytes(BIG);
    inner.writeBuffer(big);
    inner.writeInt32(8);
    expect(inner.parts!.some((p) => p === big)).toBe(true);
    const outer = new Encoder();
    outer.writeInt32(inner.size());
    outer.writeEncoder(inner);
    expect(outer.parts!.some((p) => p === big)).toBe(true);
    expect(outer.size()).toBe(4 + 4 + BIG + 4);
    const bytes = outer.buffer;
    expect(bytes.length).toBe(outer.size());
    expect(bytes.readInt32BE(0)).toBe(BIG + 8);
    expect(bytes.readInt32BE(4)).toBe(7);
    expect(bytes.subarray(8, 8 + BIG).equals(big)).toBe(true);
    expect(bytes.readInt32BE(8 + BIG)).toBe(8);
    outer.writeInt32(9); // appending after the join still works
    expect(outer.buffer.readInt32BE(outer.size() - 4)).toBe(9);
  });
});
