// Producer throughput of KafkaFrameLog against a real broker, with and without the native CRC32C.
//   npx tsc -p libs/framelog/tsconfig.lib.json && npx tsc -p libs/framelog-kafka/tsconfig.lib.json
//   node libs/framelog-kafka/bench/produce.bench.mjs [MiB=256] [--js-crc]
// --js-crc loads kafkajs's record batch encoder first, so the adapter's patch comes too late.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const jsCrc = process.argv.includes('--js-crc');
if (jsCrc) require('kafkajs/src/protocol/recordBatch/v0/index.js');
const { KafkaFrameLog } = require('@pagevault/framelog-kafka');
const { Kafka, logLevel } = require('kafkajs');

const mib = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 256);
const brokers = (process.env.PV_KAFKA_BROKERS || '127.0.0.1:9092').split(',');
const topic = `pv-bench-produce-${Date.now()}`;
const log = new KafkaFrameLog({ brokers, clientId: 'pv-bench', topic, partitions: 1, log: () => {} });
await log.ensureTopic();
const frame = randomBytes(log.maxFrameBytes);
const count = Math.ceil((mib * 1_048_576) / frame.length);
const key = randomBytes(16).toString('hex');
const p = log.producer({ maxInFlightBytes: 16 * 1_048_576 });
const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
for (let i = 0; i < count; i += 8)
  await p.send(
    key,
    Array.from({ length: Math.min(8, count - i) }, () => frame),
  );
await p.flush();
const s = Number(process.hrtime.bigint() - t0) / 1e9;
const cpu = process.cpuUsage(cpu0);
const mb = (count * frame.length) / 1e6;
console.log(
  `${jsCrc ? 'kafkajs JS CRC32C ' : 'native CRC32C     '} ${count} frames, ${mb.toFixed(0)} MB in ${s.toFixed(2)} s = ${(mb / s).toFixed(0)} MB/s, client CPU ${((cpu.user + cpu.system) / 1e6).toFixed(2)} s (${((cpu.user + cpu.system) / 1e6 / (mb / 1000)).toFixed(2)} core-s/GB)`,
);
await p.close();
await log.close();
const admin = new Kafka({ brokers, clientId: 'pv-bench', logLevel: logLevel.NOTHING }).admin();
await admin.connect();
await admin.deleteTopics({ topics: [topic] });
await admin.disconnect();
