// CRC32C of kafkajs record batches: kafkajs's JS table loop vs. @node-rs/crc32 vs. @pagevault/hashing's
// (what the adapter patches in: three CRC streams at once, or @node-rs/crc32 where that library is not
// built). Run: node libs/framelog-kafka/bench/crc32c.bench.mjs [MiB, default 512]
import { crc32c } from '@node-rs/crc32';
import hashing from '@pagevault/hashing';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const jsCrc32c = require('kafkajs/src/protocol/recordBatch/crc32C/index.js');
const mib = Number(process.argv[2] ?? 512);
const batch = randomBytes(1_048_576); // one record batch of a maximal frame

function rate(name, fn) {
  fn(batch); // warm up
  const t0 = process.hrtime.bigint();
  let x = 0;
  for (let i = 0; i < mib; i++) x ^= fn(batch);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const gbps = (mib * 1_048_576) / s / 1e9;
  console.log(
    `${name.padEnd(22)} ${mib} MiB in ${s.toFixed(3)} s = ${gbps.toFixed(2)} GB/s (${(1 / gbps).toFixed(3)} core-s per GB) [${x >>> 0}]`,
  );
  return gbps;
}

const js = rate('kafkajs JS crc32C', jsCrc32c);
const rs = rate('@node-rs/crc32 crc32c', crc32c);
const pv = rate(`pagevault (${hashing.crc32cImplementation})`, (b) => hashing.crc32c(b));
console.log(`@node-rs/crc32 ${(rs / js).toFixed(1)}x kafkajs's JS; pagevault ${(pv / rs).toFixed(1)}x @node-rs/crc32`);
