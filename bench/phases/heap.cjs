'use strict';
// A Node.js and a CPython process with large heaps of small objects, each working like a cache in service
// (records replaced, updated and read all along) through a periodic series of snapshots; and fleets of
// three processes of one program: cold snapshots through Kafka + S3 against gcore + restic, and what each
// stored — the fleets' figure is the cross-process dedup.
const { rmSync } = require('node:fs');
const { buildSynth, startHeap, startPyHeap, startSynth } = require('../lib/targets.cjs');
const { gcore, zstd1 } = require('../lib/peers.cjs');
const { runSeries, seriesRows } = require('../lib/series.cjs');
const { fmt } = require('../lib/record.cjs');

const peerText = (gms, rms) => `gcore ${fmt.ms(gms)} + restic ${fmt.ms(rms)} = ${fmt.ms(gms + rms)}`;

/**
 * One process of a managed runtime, replacing cfg.churnPct % of its records a second from the start: a
 * series of cfg.heapSeries snapshots (bench/lib/series.cjs) whose first is the cold one. Rows: the cold
 * snapshot and what it stored, then the incrementals and what the series stored, each against
 * gcore + restic and zstd -1.
 */
async function heapSeries(ctx, { W, key, start, gcText }) {
  const { cfg, rec } = ctx;
  rec.load(W);
  const h = await start();
  ctx.defer(() => h.stop());
  await ctx.fleet();
  const before = await h.stats();
  await h.churn(cfg.churnPct);
  const series = await runSeries(ctx, { pid: h.pid, key, label: W, ticks: cfg.heapSeries });
  const after = await h.stats();
  await h.stop();
  rec.data[key] = { target: h.info, churnPct: cfg.churnPct, work: { before, after }, ...series };
  const s = series.steps[0];
  const peer = s.gcoreMs + s.resticMs;
  rec.row(W, `cold snapshot (the series' first), Kafka + S3: freeze → manifest committed (${s.vmas} VMAs; committed ${fmt.ms(s.committedAfterAckMs)} after the last ack)`,
    `${fmt.ms(s.e2eMs)}, ${fmt.rate(s.logicalBytes, s.e2eMs)} (frozen ${fmt.ms(s.freezeMs)})`,
    peerText(s.gcoreMs, s.resticMs), fmt.faster(peer, s.e2eMs), rec.goal(`${W} cold, Kafka + S3: ≥ 3× faster than gcore + restic`, peer / s.e2eMs >= 3, fmt.x(peer / s.e2eMs), '≥ 3× faster'));
  const { pv, restic: rr } = series.first;
  rec.row(W, `stored after the cold snapshot (${fmt.mib(s.logicalBytes)} logical; core ${fmt.mib(s.coreBytes)})`, `${fmt.mib(pv.bytes)}, ${fmt.x(s.logicalBytes / pv.bytes)} logical/physical`,
    `restic repo ${fmt.mib(rr.bytes)}; zstd -1 of the core ${fmt.mib(s.zstdBytes)}`, `${fmt.x(pv.bytes / rr.bytes)} of restic's`);
  const replaced = (after.replaced - before.replaced) / after.records;
  seriesRows(rec, {
    W, name: W, under: `while it replaces ${cfg.churnPct}% of its records a second`, series,
    note: `${fmt.pct(replaced)} of the records replaced in all; ${gcText(before.gcs, after.gcs)}`,
  });
}

/** A Node.js process with a large V8 heap of small objects. */
const single = (ctx) => heapSeries(ctx, {
  W: `node heap ${ctx.cfg.heapMiB} MiB`, key: 'heap', start: () => startHeap(ctx.cfg.heapMiB, 1, 2, 0.25),
  gcText: (_, g) => `V8 GCs: ${g.minor} minor, ${g.major} major`,
});

/** A CPython process with as large a heap of dicts, strings and lists: an allocator and layout that is not ours. */
const python = (ctx) => heapSeries(ctx, {
  W: `python heap ${ctx.cfg.heapMiB} MiB`, key: 'python', start: () => startPyHeap(ctx.cfg.heapMiB, 3),
  gcText: (a, b) => `cyclic GC runs by generation: ${b.map((n, i) => n - a[i]).join(', ')}`,
});

/**
 * Three processes of one program, frozen and captured together into one tenant, against gcore of each and
 * one restic backup of the three cores. One member is also snapshotted alone into a tenant of its own:
 * three times its cost over what the three cost together is the cross-process dedup.
 */
async function fleetOfThree(ctx, { W, key, start }) {
  const { rec, scratch } = ctx;
  rec.load(W);
  const procs = [];
  for (let i = 0; i < 3; i++) {
    const p = await start(i);
    ctx.defer(() => p.stop());
    procs.push(p);
  }
  const pids = procs.map((p) => p.pid);
  const fleet = await ctx.fleet();
  const alone = ctx.tenant(`${key}-one`);
  const one = await fleet.snapshot(pids[0], alone);
  const tenant = ctx.tenant(key);
  const grp = await fleet.group(pids, tenant);
  const restic = await ctx.restic(key);
  const cores = [];
  for (const pid of pids) cores.push(await gcore(pid, scratch, scratch));
  const r = await restic.backup(cores.map((c) => c.file));
  const zs = [];
  for (const c of cores) zs.push(await zstd1(c.file, scratch));
  for (const c of cores) rmSync(c.file);
  for (const p of procs) await p.stop();
  const pvOne = await ctx.s3.usage(`t/${alone}/`);
  const pv = await ctx.s3.usage(`t/${tenant}/`);
  const rr = await ctx.s3.usage(`${restic.prefix}/`);
  const gms = cores.reduce((n, c) => n + c.ms, 0);
  const zsum = zs.reduce((n, z) => n + z.bytes, 0);
  rec.data[key] = { targets: procs.map((p) => p.info), alone: one, group: grp, gcore: cores, restic: r, zstd: zs, stored: { one: pvOne, pv, restic: rr } };
  const peer = gms + r.ms;
  const tail = Math.max(...grp.commits.map((c) => c.wall)) - grp.shippedWall;
  rec.row(W, `group snapshot (frozen together), Kafka + S3: freeze → 3 manifests committed (last ${fmt.ms(tail)} after the last ack)`,
    `${fmt.ms(grp.e2eMs)}, ${fmt.rate(grp.logicalBytes, grp.e2eMs)} (frozen ${fmt.ms(grp.thawedWall - grp.startWall)})`,
    `3 × gcore ${fmt.ms(gms)} + restic ${fmt.ms(r.ms)} = ${fmt.ms(peer)}`, fmt.faster(peer, grp.e2eMs),
    rec.goal(`${W}, Kafka + S3: ≥ 3× faster than gcore + restic`, peer / grp.e2eMs >= 3, fmt.x(peer / grp.e2eMs), '≥ 3× faster'));
  rec.row(W, `stored (${fmt.mib(grp.logicalBytes)} logical in all); one member alone stores ${fmt.mib(pvOne.bytes)}`,
    `${fmt.mib(pv.bytes)}, ${fmt.x(grp.logicalBytes / pv.bytes)} logical/physical; cross-process dedup ${fmt.x((3 * pvOne.bytes) / pv.bytes)}`,
    `restic repo ${fmt.mib(rr.bytes)}; zstd -1 of the 3 cores ${fmt.mib(zsum)}`, `${fmt.x(pv.bytes / rr.bytes)} of restic's`);
}

/** Three Node.js processes of one program that loaded the same records (three quarters of their heap). */
const nodeFleet = (ctx) => fleetOfThree(ctx, {
  W: `fleet: 3 × node heap ${ctx.cfg.fleetMiB} MiB (¾ the same records)`, key: 'fleet-node',
  start: (i) => startHeap(ctx.cfg.fleetMiB, 1, 100 + i, 0.25),
});

/** Three C processes that loaded the same data (the synthetic target, one seed), each then rewrote 10% of its fresh quarter. */
const dataFleet = async (ctx) => {
  const bin = buildSynth(ctx.scratch);
  const mib = Math.max(16, Math.round(ctx.cfg.sizeMiB / 4 / 4) * 4);
  return fleetOfThree(ctx, {
    W: `fleet: 3 × synthetic ${mib} MiB (same data, 2.5% rewritten apart)`, key: 'fleet-data',
    start: async () => {
      const t = await startSynth(bin, mib, 7);
      await t.mutate(100);
      return t;
    },
  });
};

module.exports = { single, python, nodeFleet, dataFleet };
