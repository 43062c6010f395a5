'use strict';
// The ceilings of the shared services on this machine, to read the fleet's figures against: Kafka's own
// Java producer (ProducerPerformance, records of one frame, acks=all, idempotent — the agent's settings)
// and S3 PUT/GET of pack-sized objects one at a time (the compactor seals and uploads packs serially).
const { randomBytes } = require('node:crypto');
const { existsSync } = require('node:fs');
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');
const { Kafka, logLevel } = require('kafkajs');
const { openObjectStore } = require('@pagevault/runtime');
const { run } = require('../lib/proc.cjs');
const { fmt } = require('../lib/record.cjs');

const FRAME = 1_048_576 - 4096; // DEFAULT_MAX_FRAME_BYTES: one frame per record
const PACK = 12 << 20; // the repository's packTargetBytes

async function kafkaCeiling(ctx, mib) {
  const libs = join(__dirname, '..', '..', '.stack', 'kafka', 'libs');
  if (!existsSync(libs)) return undefined; // a stack this repo did not install: no Java client at hand
  const topic = `pv-bench-${ctx.runId}-producer-perf`;
  const admin = new Kafka({ clientId: 'pv-bench-admin', brokers: ctx.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
    const records = Math.max(16, Math.round((mib * 2 ** 20) / FRAME));
    const r = await run('java', ['-Xmx512m', '-cp', `${libs}/*`, 'org.apache.kafka.tools.ProducerPerformance',
      '--topic', topic, '--num-records', String(records), '--record-size', String(FRAME), '--throughput', '-1',
      '--producer-props', `bootstrap.servers=${ctx.brokers.join(',')}`, 'acks=all', 'enable.idempotence=true',
      'max.request.size=16777216', 'batch.size=1048576', 'linger.ms=0', 'compression.type=none'], { tmp: ctx.scratch });
    const last = r.stdout.trim().split('\n').filter((l) => l.includes('records sent')).pop() ?? '';
    const m = /records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\)/.exec(last);
    if (!m) throw new Error(`ProducerPerformance printed no summary: ${last || r.stdout.slice(-300)}`);
    return { records, bytesPerSec: Number(m[1]) * FRAME, summary: last };
  } finally {
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function s3Ceiling(ctx, mib) {
  const store = openObjectStore(ctx.s3config);
  const n = Math.max(2, Math.round(mib / 12));
  const body = randomBytes(PACK);
  const keys = Array.from({ length: n }, (_, i) => `t/${ctx.tenant('s3-ceiling')}/packs/${String(i).padStart(4, '0')}`);
  let t0 = performance.now();
  for (const k of keys) await store.put(k, body);
  const putMs = performance.now() - t0;
  t0 = performance.now();
  for (const k of keys) await store.get(k);
  const getMs = performance.now() - t0;
  for (const k of keys) await store.delete(k);
  // Small objects one at a time, as a compactor writes a VMA's page-map node (~2 KiB) at each VMA end.
  const small = randomBytes(2048);
  const smallKeys = Array.from({ length: 100 }, (_, i) => `t/${ctx.tenant('s3-ceiling')}/maps/${String(i).padStart(4, '0')}`);
  t0 = performance.now();
  for (const k of smallKeys) await store.put(k, small);
  const smallPutMs = (performance.now() - t0) / smallKeys.length;
  for (const k of smallKeys) await store.delete(k);
  return { objects: n, bytes: n * PACK, putMs, getMs, smallPutMs };
}

module.exports = async function services(ctx) {
  const { cfg, rec } = ctx;
  rec.load('services');
  const mib = Math.min(cfg.sizeMiB, 256);
  const W = 'the shared services (context)';
  const k = await kafkaCeiling(ctx, mib);
  const s = await s3Ceiling(ctx, mib);
  rec.data.services = { kafka: k, s3: s };
  if (k) {
    rec.row(W, `Kafka produce ceiling: Java ProducerPerformance, ${k.records} records of one frame (1 MiB − 4 KiB), acks=all, idempotent`,
      '', `${fmt.rate(k.bytesPerSec, 1000)}`, '', '');
  }
  rec.row(W, `S3 PUT, then GET, of ${s.objects} objects of 12 MiB (a pack) one at a time, through pagevault's S3 adapter`,
    `PUT ${fmt.rate(s.bytes, s.putMs)}, GET ${fmt.rate(s.bytes, s.getMs)}`, '', '', '');
  rec.row(W, 'S3 PUT of a 2 KiB object (a page-map node), one at a time, through pagevault\'s S3 adapter', `${s.smallPutMs.toFixed(1)} ms each`, '', '', '');
};
