'use strict';
// A periodic series of snapshots of a service while it works. At each tick the service is stopped once:
// pagevault snapshots it (an incremental against the previous one, through Kafka + S3) and gcore dumps
// the same stopped memory; once it runs again restic backs the core up and zstd -1 compresses it, so
// both peers see the very states pagevault saw. Then the service runs `intervalMs` more before the next
// tick: between two freezes it runs the interval plus the peers' time, and each step records how long.
const { rmSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const { allThreadsStopped } = require('@pagevault/capture');
const { gcore, zstd1 } = require('./peers.cjs');
const { sleep } = require('./proc.cjs');
const { startWorker } = require('./rpc.cjs');
const { fmt } = require('./record.cjs');

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const sum = (xs) => xs.reduce((n, x) => n + x, 0);

/**
 * SIGSTOPs `pid` and waits until every thread is stopped: the agent's freezer then finds it stopped and
 * leaves it so (it would otherwise continue it at thaw, and gcore would dump a running process).
 */
async function stopAll(pid) {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + 10_000;
  while (!allThreadsStopped(pid)) {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop within 10 s`);
    await sleep(2);
  }
}

/**
 * Runs the series on `pid` into the tenant and restic repository named `key`; `label` names its stages.
 * `running()`, when given, says at each tick whether the service's load still runs. Resolves with the
 * steps, what was stored after the first (cold) snapshot and after the last.
 */
async function runSeries(ctx, { pid, key, label, running, ticks = ctx.cfg.series, intervalMs = ctx.cfg.intervalMs }) {
  const { rec, scratch } = ctx;
  const fleet = await ctx.fleet();
  const tenant = ctx.tenant(key);
  const restic = await ctx.restic(key);
  const usage = async () => ({ pv: await ctx.s3.usage(`t/${tenant}/`), restic: await ctx.s3.usage(`${restic.prefix}/`) });
  const steps = [];
  let first;
  let parent;
  let lastStop;
  for (let i = 0; i < ticks; i++) {
    await sleep(intervalMs);
    const loadRunning = running ? running() : undefined;
    const stoppedAt = performance.now();
    let s;
    let g;
    try {
      await stopAll(pid);
      s = await fleet.snapshot(pid, tenant, parent);
      g = await gcore(pid, scratch, scratch);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const r = await restic.backup([g.file]);
    const z = await zstd1(g.file, scratch);
    rmSync(g.file);
    parent = s.id;
    const c = s.commit.counts;
    steps.push({
      i, loadRunning, sinceMs: lastStop === undefined ? undefined : stoppedAt - lastStop, id: s.id, e2eMs: s.e2eMs,
      shipMs: s.shippedWall - s.startWall, committedAfterAckMs: s.commit.wall - s.shippedWall, vmas: s.capture.vmas,
      freezeMs: s.capture.freezeMs, logicalBytes: s.logicalBytes, dataPages: c.dataPages, zeroPages: c.zeroPages, parentPages: c.parentPages,
      newPages: c.newPages, deltaPages: c.deltaPages ?? 0, basesFetched: c.basesFetched ?? 0, newBytes: c.newBytes + c.mapBytesWritten,
      gcoreMs: g.ms, coreBytes: g.bytes, resticMs: r.ms, resticAdded: r.dataAdded, zstdBytes: z.bytes,
    });
    lastStop = stoppedAt;
    if (i === 0) {
      rec.stage(`gcore (gdb), ${label}`, g);
      rec.stage(`restic backup of the core, ${label}`, r);
      first = await usage();
    }
  }
  const last = await usage();
  // Checking the whole store (every page of every snapshot) against restic check --read-data of the same states.
  const vw = await startWorker('restore', { store: ctx.s3config, tenant });
  const verify = await vw.call('verify', {});
  rec.stage(`pagevault verify of the store, ${label}`, await vw.exit());
  const resticCheck = await restic.checkReadData();
  rec.stage(`restic check --read-data, ${label}`, resticCheck);
  return { tenant, intervalMs, steps, first, verify, resticCheck, stored: { ...last, resticRawData: await restic.rawData() } };
}

/**
 * The series' rows against gcore + restic and zstd -1: the incremental snapshots (median) and the bytes
 * stored after the series, each with its goal (`name` opens the goal names). `under` says what the
 * service did meanwhile ("under redis-benchmark"); `note`, when given, ends the stored row's figure.
 */
function seriesRows(rec, { W, name, under, series, note }) {
  const st = series.steps;
  const inc = st.slice(1);
  const pvInc = median(inc.map((s) => s.e2eMs));
  const gInc = median(inc.map((s) => s.gcoreMs));
  const rInc = median(inc.map((s) => s.resticMs));
  const peerInc = median(inc.map((s) => s.gcoreMs + s.resticMs));
  rec.row(W, `incremental ${under}, Kafka + S3 (median of ${inc.length}; ${fmt.mib(median(inc.map((s) => s.newBytes)))} new a snapshot)`,
    `${fmt.ms(pvInc)}, ${fmt.rate(median(inc.map((s) => s.logicalBytes)), pvInc)}`,
    `gcore ${fmt.ms(gInc)} + restic ${fmt.ms(rInc)}; sum ${fmt.ms(peerInc)}`, fmt.faster(peerInc, pvInc),
    rec.goal(`${name} incremental, Kafka + S3: ≥ 3× faster than gcore + restic`, peerInc / pvInc >= 3, fmt.x(peerInc / pvInc), '≥ 3× faster'));
  const { pv, restic: rr, resticRawData } = series.stored;
  const logical = sum(st.map((s) => s.logicalBytes));
  const cores = sum(st.map((s) => s.coreBytes));
  const ratio = pv.bytes / rr.bytes;
  const every = median(inc.map((s) => s.sinceMs));
  rec.row(W, `stored after a series of ${st.length} ${under}, one every ${fmt.ms(every)} (median freeze to freeze: ${series.intervalMs / 1000} s after each tick's peers finished; ` +
    `${fmt.mib(logical)} logical in all; cores ${fmt.mib(cores)}${note ? `; ${note}` : ''})`,
    `${fmt.mib(pv.bytes)} (${fmt.split(pv.byFolder)}), ${fmt.x(logical / pv.bytes)} logical/physical`,
    `restic repo ${fmt.mib(rr.bytes)} (stats raw-data ${fmt.mib(resticRawData.total_size)}; ${fmt.x(cores / rr.bytes)} of the cores); zstd -1 of each core ${fmt.mib(sum(st.map((s) => s.zstdBytes)))}`,
    `${fmt.x(ratio)} of restic's`, rec.goal(`${name} stored over the series ≤ 0.6× restic's`, ratio <= 0.6, fmt.x(ratio), '≤ 0.6× restic'));
  const v = series.verify;
  rec.row(W, `verify the store after the series: every page of its ${v.snapshots} snapshots checked against its hash (pagevault verify; restic check --read-data of its repository)`,
    `${fmt.ms(v.ms)} (${fmt.mib(v.bytes)} read, ${v.pages} distinct pages, ${v.deltasFetched} of them read again with their bases)`, `restic ${fmt.ms(series.resticCheck.ms)}`, fmt.faster(series.resticCheck.ms, v.ms));
}

module.exports = { runSeries, seriesRows, median };
