'use strict';
// A real service under load: redis-server filled by redis-benchmark, then a periodic series of snapshots
// (bench/lib/series.cjs) while redis-benchmark keeps writing: pagevault's incrementals against gcore of
// the same stopped states backed up by restic, and zstd -1 of each core.
const { mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { fillRedis, loadRedis, startRedis } = require('../lib/targets.cjs');
const { runSeries, seriesRows } = require('../lib/series.cjs');
const { fmt } = require('../lib/record.cjs');

module.exports = async function redis(ctx) {
  const { cfg, rec, scratch } = ctx;
  const dir = join(scratch, 'redis');
  mkdirSync(dir, { recursive: true });
  rec.load('redis: fill');
  const server = await startRedis(dir);
  ctx.defer(() => server.stop());
  const spec = { keys: cfg.redisKeys, valueBytes: cfg.redisValueBytes };
  const fill = await fillRedis(server.port, { ...spec, requests: 2 * cfg.redisKeys });
  const d = (rec.data.redis = { fill: { ms: fill.ms, keys: server.keys(), usedMemory: server.usedMemory(), rss: server.rss() } });
  const W = `redis ${fmt.mib(d.fill.rss)} RSS, ${d.fill.keys} keys`;
  await ctx.fleet(); // started (and warmed up) before the load, not under it
  const load = await loadRedis(server.port, { ...spec, requests: 200_000 * cfg.series });
  ctx.defer(() => load.stop());
  rec.load('redis: series');
  const series = await runSeries(ctx, { pid: server.pid, key: 'redis', label: 'redis', running: load.running });
  rec.load('redis: series end');
  await load.stop();
  await server.stop();
  Object.assign(d, series);
  const s0 = series.steps[0];
  const peer0 = s0.gcoreMs + s0.resticMs;
  rec.row(W, 'cold snapshot, Kafka + S3: freeze → manifest committed', `${fmt.ms(s0.e2eMs)}, ${fmt.rate(s0.logicalBytes, s0.e2eMs)}`,
    `gcore ${fmt.ms(s0.gcoreMs)} + restic ${fmt.ms(s0.resticMs)} = ${fmt.ms(peer0)}`, fmt.faster(peer0, s0.e2eMs),
    rec.goal('redis cold, Kafka + S3: ≥ 3× faster than gcore + restic', peer0 / s0.e2eMs >= 3, fmt.x(peer0 / s0.e2eMs), '≥ 3× faster'));
  seriesRows(rec, { W, name: 'redis', under: 'under redis-benchmark', series });
};
