import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { nativeCrc32c, patchKafkajsCrc32c } from './crc32c-patch';
import './kafka-frame-log';

const req = createRequire(__filename);
// kafkajs's own table-driven CRC and the index.js wrapper it goes through (unsigned result).
const jsCrc32c = req('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (b: Buffer) => number;
const kafkajsCrc32c = (b: Buffer) => jsCrc32c(b) >>> 0; // what index.js's Uint32Array.from([crc])[0] does

describe('native CRC32C in kafkajs', () => {
  it('is patched when the adapter loads, before any record batch is encoded', () => {
    expect(patchKafkajsCrc32c()).toBe('patched');
    expect(req('kafkajs/src/protocol/recordBatch/crc32C')).toBe(nativeCrc32c);
  });

  it('equals kafkajs JS CRC32C, as an unsigned 32-bit integer, on random buffers of every small length and some large', () => {
    const lengths = [...Array(70).keys(), 4095, 4096, 4097, 65_536, 1_048_576];
    for (const n of lengths) {
      const buf = randomBytes(n);
      const native = nativeCrc32c(buf);
      expect(native).toBe(kafkajsCrc32c(buf));
      expect(Number.isInteger(native) && native >= 0 && native <= 0xffffffff).toBe(true);
    }
    expect(nativeCrc32c(Buffer.from('123456789'))).toBe(0xe3069283); // the CRC-32C check value
  });

  it('is what kafkajs writes into an encoded record batch', async () => {
    const { RecordBatch } = req('kafkajs/src/protocol/recordBatch/v0') as {
      RecordBatch: (o: object) => Promise<{ buffer: Buffer }>;
    };
    const Record = req('kafkajs/src/protocol/recordBatch/record/v0') as (o: object) => unknown;
    const records = [0, 1, 2].map((i) =>
      Record({ offsetDelta: i, key: Buffer.from('k'), value: randomBytes(5000) }),
    );
    const wire = (await RecordBatch({ records, firstTimestamp: Date.now(), maxTimestamp: Date.now() }))
      .buffer;
    // baseOffset(8) batchLength(4) partitionLeaderEpoch(4) magic(1) crc(4), then the checksummed body
    expect(wire.readUInt32BE(17)).toBe(kafkajsCrc32c(wire.subarray(21)));
  });
});
