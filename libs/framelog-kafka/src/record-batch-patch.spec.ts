import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { BIG, encoderParts, patchKafkajsEncoder } from './encoder-patch';
import { recordBatchByParts, type RecordBatchOptions } from './record-batch-patch';

const req = createRequire(__filename);
const Long = req('kafkajs/src/utils/long') as { fromValue(n: number): object; fromInt(n: number): object };
const { RecordBatch } = req('kafkajs/src/protocol/recordBatch/v0/index.js') as {
  RecordBatch: (o: RecordBatchOptions) => Promise<{ buffer: Buffer }>;
};
const Record = req('kafkajs/src/protocol/recordBatch/record/v0/index.js') as (o: object) => unknown;

const values = [0, 1, 511, 4096, BIG - 1, BIG, BIG + 1, 1_048_576].map((n, i) => randomBytes(n).fill(i + 7));
const records = (vs: Buffer[]) => vs.map((value, offsetDelta) => Record({ offsetDelta, timestampDelta: 0, key: `k${offsetDelta}`, value, headers: {} }));

describe('record batches checksummed over their parts', () => {
  patchKafkajsEncoder();
  const byParts = recordBatchByParts(RecordBatch);

  it('builds kafkajs\'s record batch byte for byte: small and large records, idempotent and transactional', async () => {
    const cases: RecordBatchOptions[] = [
      { records: records(values) },
      { records: records(values.slice(0, 3)), firstSequence: 5, producerId: Long.fromValue(1234), producerEpoch: 2, lastOffsetDelta: 2 },
      { records: records([values[7]!]), transactional: true, partitionLeaderEpoch: 3, firstOffset: Long.fromInt(9) },
      { records: [] },
    ];
    for (const c of cases) {
      const o = { ...c, firstTimestamp: 1_700_000_000_000, maxTimestamp: 1_700_000_000_123 };
      const want = (await RecordBatch(o)).buffer;
      const got = (await byParts(o)).buffer;
      expect(got.length).toBe(want.length);
      expect(got.equals(want)).toBe(true);
    }
  });

  it('keeps a large record by reference through the batch (no join until the request is written)', async () => {
    const big = values[7]!;
    const e = await byParts({ records: records([big]), firstTimestamp: 1, maxTimestamp: 1 });
    expect(encoderParts(e as never).some((p) => p === big)).toBe(true);
  });

  it('hands compressed batches to kafkajs\'s own RecordBatch', async () => {
    const seen: RecordBatchOptions[] = [];
    const wrapped = recordBatchByParts(async (o) => (seen.push(o), RecordBatch(o)) as never);
    await wrapped({ compression: 1, records: records(values.slice(0, 2)) });
    expect(seen).toHaveLength(1);
  });
});
