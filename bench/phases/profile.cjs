'use strict';
// Where the time goes, measured rather than guessed: the same work again under `node --cpu-prof`, each
// stage in its own process, reduced to self time by function and by area. Figures from these runs are
// kept apart (the profiler costs a little); they explain the table, they are not in it.
const { mkdirSync } = require('node:fs');
const { join } = require('node:path');
const { startWorker } = require('../lib/rpc.cjs');
const { buildSynth, startSynth } = require('../lib/targets.cjs');
const { summarizeProcess: newest } = require('../lib/profile.cjs');

function profArgs(dir) {
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=500'];
}

module.exports = async function profile(ctx) {
  const { cfg, rec, scratch } = ctx;
  rec.load('profile');
  const target = await startSynth(buildSynth(scratch), cfg.sizeMiB, 11);
  ctx.defer(() => target.stop());
  const pid = target.pid;
  const d = (rec.data.profile = {});
  const base = join(scratch, 'prof');

  const capDir = join(base, 'capture');
  const cap = await startWorker('capture', {}, { execArgv: profArgs(capDir) });
  d.capture = await cap.call('capture', { pid });
  await cap.exit();
  rec.profiles[`capture only, synthetic ${cfg.sizeMiB} MiB, frames dropped`] = newest(capDir);

  const embDir = join(base, 'embedded');
  const emb = await ctx.embedded(join(scratch, 'store-prof'), ctx.tenant('profile'), profArgs(embDir));
  d.cold = await emb.call('snapshot', { pid });
  await target.mutate(cfg.changePct * 40);
  d.incremental = await emb.call('snapshot', { pid, parent: d.cold.id });
  await emb.exit();
  rec.profiles[`embedded pipeline (capture + compaction in one process): cold + ${cfg.changePct}% incremental, synthetic ${cfg.sizeMiB} MiB`] = newest(embDir);

  const rsDir = join(base, 'restore');
  const rs = await startWorker('restore', { store: { kind: 'dir', dir: join(scratch, 'store-prof') }, tenant: ctx.tenant('profile') }, { execArgv: profArgs(rsDir) });
  d.restoreRaw = await rs.call('raw', { id: d.cold.id, out: join(scratch, 'restore-prof') });
  await rs.exit();
  rec.profiles[`restore → raw sparse images from the directory store (fsync), synthetic ${cfg.sizeMiB} MiB`] = newest(rsDir);

  const agentDir = join(base, 'agent');
  const compDir = join(base, 'compactor');
  const fleet = await ctx.startFleet({ suffix: 'prof', agentArgv: profArgs(agentDir), compactorArgv: profArgs(compDir) });
  d.fleetCold = await fleet.snapshot(pid, ctx.tenant('profile-fleet'));
  await fleet.exit();
  rec.profiles[`fleet agent (capture → Kafka): cold, synthetic ${cfg.sizeMiB} MiB`] = newest(agentDir);
  rec.profiles[`fleet compactor (Kafka → S3): cold, synthetic ${cfg.sizeMiB} MiB`] = newest(compDir);
  await target.stop();
};
