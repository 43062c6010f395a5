'use strict';
// A real service under load: redis-server filled by redis-benchmark, then a periodic series of snapshots
// while redis-benchmark keeps writing. At each tick redis is stopped once, pagevault snapshots it (an
// incremental against the previous one, through Kafka + S3) and gcore dumps the same stopped memory; once
// it runs again restic backs the core up and zstd -1 compresses it. Both peers see the same states.
const { mkdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { fillRedis, loadRedis, startRedis } = require('../lib/targets.cjs');
const { gcore, zstd1 } = require('../lib/peers.cjs');
const { sleep } = require('../lib/proc.cjs');
const { fmt } = require('../lib/record.cjs');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

module.exports = async function redis(ctx) {
  const { cfg, rec, scratch } = ctx;
  const dir = join(scratch, 'redis');
  mkdirSync(dir, { recursive: true });
  rec.load('redis: fill');
  const server = await startRedis(dir);
  ctx.defer(() => server.stop());
  const spec = { keys: cfg.redisKeys, valueBytes: cfg.redisValueBytes };
  const fill = await fillRedis(server.port, { ...spec, requests: 2 * cfg.redisKeys });
  const d = (rec.data.redis = { fill: { ms: fill.ms, keys: server.keys(), usedMemory: server.usedMemory(), rss: server.rss() }, steps: [] });
  const W = `redis ${fmt.mib(d.fill.rss)} RSS, ${d.fill.keys} keys`;
  const fleet = await ctx.fleet();
  const tenant = ctx.tenant('redis');
  const restic = await ctx.restic('redis');
  const load = await loadRedis(server.port, { ...spec, requests: 200_000 * cfg.series });
  ctx.defer(() => load.stop());
  rec.load('redis: series');
  let parent;
  for (let i = 0; i < cfg.series; i++) {
    await sleep(cfg.intervalMs);
    const loaded = load.running();
    process.kill(server.pid, 'SIGSTOP');
    let s;
    let g;
    try {
      s = await fleet.snapshot(server.pid, tenant, parent);
      g = await gcore(server.pid, scratch, scratch);
    } finally {
      process.kill(server.pid, 'SIGCONT');
    }
    const r = await restic.backup([g.file]);
    const z = await zstd1(g.file, scratch);
    rmSync(g.file);
    parent = s.id;
    const c = s.commit.counts;
    d.steps.push({
      i, loadRunning: loaded, id: s.id, e2eMs: s.e2eMs, shipMs: s.shippedWall - s.startWall, logicalBytes: s.logicalBytes,
      dataPages: c.dataPages, parentPages: c.parentPages, newPages: c.newPages, newBytes: c.newBytes + c.mapBytesWritten,
      gcoreMs: g.ms, coreBytes: g.bytes, resticMs: r.ms, resticAdded: r.dataAdded, zstdBytes: z.bytes,
    });
    if (i === 0) {
      rec.stage('gcore (gdb), redis', g);
      rec.stage('restic backup of the core, redis', r);
    }
  }
  rec.load('redis: series end');
  await load.stop();
  await server.stop();
  const pv = await ctx.s3.usage(`t/${tenant}/`);
  const rr = await ctx.s3.usage(`${restic.prefix}/`);
  d.stored = { pv, restic: rr, resticRawData: await restic.rawData() };
  const st = d.steps;
  const inc = st.slice(1);
  const peer0 = st[0].gcoreMs + st[0].resticMs;
  rec.row(W, 'cold snapshot, Kafka + S3: freeze → manifest committed', `${fmt.ms(st[0].e2eMs)}, ${fmt.rate(st[0].logicalBytes, st[0].e2eMs)}`,
    `gcore ${fmt.ms(st[0].gcoreMs)} + restic ${fmt.ms(st[0].resticMs)} = ${fmt.ms(peer0)}`, fmt.faster(peer0, st[0].e2eMs),
    rec.goal('redis cold, Kafka + S3: ≥ 3× faster than gcore + restic', peer0 / st[0].e2eMs >= 3, fmt.x(peer0 / st[0].e2eMs), '≥ 3× faster'));
  const pvInc = median(inc.map((s) => s.e2eMs));
  const gInc = median(inc.map((s) => s.gcoreMs));
  const rInc = median(inc.map((s) => s.resticMs));
  const peerInc = median(inc.map((s) => s.gcoreMs + s.resticMs));
  rec.row(W, `incremental under load, Kafka + S3 (median of ${inc.length})`, `${fmt.ms(pvInc)}, ${fmt.rate(median(inc.map((s) => s.logicalBytes)), pvInc)}`,
    `gcore ${fmt.ms(gInc)} + restic ${fmt.ms(rInc)}; sum ${fmt.ms(peerInc)}`, fmt.faster(peerInc, pvInc),
    rec.goal('redis incremental, Kafka + S3: ≥ 3× faster than gcore + restic', peerInc / pvInc >= 3, fmt.x(peerInc / pvInc), '≥ 3× faster'));
  const logical = st.reduce((n, s) => n + s.logicalBytes, 0);
  const cores = st.reduce((n, s) => n + s.coreBytes, 0);
  const zsum = st.reduce((n, s) => n + s.zstdBytes, 0);
  const ratio = pv.bytes / rr.bytes;
  rec.row(W, `stored after a series of ${cfg.series}, ${cfg.intervalMs / 1000} s apart under redis-benchmark (${fmt.mib(logical)} logical in all; cores ${fmt.mib(cores)})`,
    `${fmt.mib(pv.bytes)} (${fmt.split(pv.byFolder)}), ${fmt.x(logical / pv.bytes)} logical/physical`,
    `restic repo ${fmt.mib(rr.bytes)} (stats raw-data ${fmt.mib(d.stored.resticRawData.total_size)}; ${fmt.x(cores / rr.bytes)} of the cores); zstd -1 of each core ${fmt.mib(zsum)}`,
    `${fmt.x(ratio)} of restic's`, rec.goal('stored over the series ≤ 0.6× restic\'s', ratio <= 0.6, fmt.x(ratio), '≤ 0.6× restic'));
};
