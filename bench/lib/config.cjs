'use strict';
// The bench's settings, read once here from PV_BENCH_* (and the stack's PV_S3_* / PV_KAFKA_*).
const { randomBytes } = require('node:crypto');

/** A numeric setting: an integer (a multiple of `multipleOf`; 0 admits fractions) of at least `min`. */
function num(env, name, fallback, { min = 0, multipleOf = 1 } = {}) {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < min || (multipleOf > 0 && v % multipleOf !== 0)) {
    throw new Error(`${name}=${raw}: expected a number ≥ ${min}${multipleOf > 1 ? `, a multiple of ${multipleOf}` : ''}`);
  }
  return v;
}

function loadConfig(env = process.env) {
  const smoke = env.PV_BENCH_SMOKE === '1' || env.PV_BENCH_SMOKE === 'true';
  const sizeMiB = num(env, 'PV_BENCH_SIZE_MIB', smoke ? 64 : 1024, { min: 16, multipleOf: 4 });
  const series = num(env, 'PV_BENCH_SERIES', smoke ? 3 : 10, { min: 2 });
  const cfg = {
    smoke,
    /** The synthetic target's region. */
    sizeMiB,
    /** Snapshots in each periodic series (redis, the Node.js heap, the CPython heap), and the pause after each. */
    series,
    /** The heaps' series: as long as the others, but 2 in smoke runs (a node heap's tick costs ~15 s there). */
    heapSeries: num(env, 'PV_BENCH_HEAP_SERIES', smoke ? 2 : series, { min: 2 }),
    intervalMs: num(env, 'PV_BENCH_INTERVAL_MS', smoke ? 500 : 2000),
    /** The Node.js heap and the CPython heap, and each of the three fleet members. */
    heapMiB: num(env, 'PV_BENCH_HEAP_MIB', smoke ? 32 : Math.max(32, sizeMiB / 4), { min: 8 }),
    fleetMiB: num(env, 'PV_BENCH_FLEET_MIB', smoke ? 16 : Math.max(16, sizeMiB / 8), { min: 8 }),
    /** Share of its records a heap service replaces a second during its series (¼ as many updated in place), in %. */
    churnPct: num(env, 'PV_BENCH_CHURN_PCT', 0.5, { min: 0, multipleOf: 0 }),
    /** redis keyspace (512-byte values by default): ~1/4 of the synthetic size at the defaults. */
    redisKeys: num(env, 'PV_BENCH_REDIS_KEYS', smoke ? 20_000 : sizeMiB * 256, { min: 1000 }),
    redisValueBytes: num(env, 'PV_BENCH_REDIS_VALUE', 512, { min: 1 }),
    /** Share of the synthetic target's pages rewritten before its incremental snapshot, in %. */
    changePct: num(env, 'PV_BENCH_CHANGE_PCT', 1, { min: 0 }),
    /** One-page VMAs of the many-VMA target (a process split by mprotect, as allocators and JITs do). */
    vmaCount: num(env, 'PV_BENCH_VMAS', smoke ? 2000 : 20_000, { min: 100 }),
    /** Repetitions of the cheap capture figures (best kept; every sample is in latest.json). */
    reps: num(env, 'PV_BENCH_REPS', smoke ? 1 : 3, { min: 1 }),
    hashMiB: smoke ? 16 : 64,
    hashSeconds: smoke ? 0.5 : 2,
    profile: env.PV_BENCH_PROFILE !== '0',
    keep: env.PV_BENCH_KEEP === '1',
    restic: env.PV_BENCH_RESTIC || 'restic',
    resultsDir: env.PV_BENCH_RESULTS || `${__dirname}/../results`,
    updateDocs: env.PV_BENCH_DOCS !== undefined ? env.PV_BENCH_DOCS === '1' : !smoke,
  };
  if (cfg.changePct * 4 > 100) throw new Error('PV_BENCH_CHANGE_PCT must be at most 25 (the fresh quarter)');
  const stamp = new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14);
  const runId = `${stamp}-${randomBytes(2).toString('hex')}`;
  const services = {
    s3: {
      PV_S3_ENDPOINT: env.PV_S3_ENDPOINT || 'http://127.0.0.1:8333', PV_S3_BUCKET: env.PV_S3_BUCKET || 'pagevault',
      PV_S3_REGION: env.PV_S3_REGION || 'us-east-1', PV_S3_ACCESS_KEY: env.PV_S3_ACCESS_KEY, PV_S3_SECRET_KEY: env.PV_S3_SECRET_KEY,
    },
    brokers: (env.PV_KAFKA_BROKERS || '127.0.0.1:9092').split(',').map((b) => b.trim()),
  };
  if (!services.s3.PV_S3_ACCESS_KEY || !services.s3.PV_S3_SECRET_KEY) {
    throw new Error('PV_S3_ACCESS_KEY and PV_S3_SECRET_KEY must be set: run through `npm run bench` (it sources scripts/stack-env.sh)');
  }
  return { cfg, runId, services };
}

module.exports = { loadConfig };
