'use strict';
// pagevault's benchmark suite (npm run bench → scripts/bench.sh → here). Prints a table of figures, each
// next to its peer measured in the same run, and writes bench/results/latest.{json,md}; a full run also
// writes full.{json,md} and refreshes the generated block of docs/benchmarks.md. Exits non-zero only when something failed to
// run — a missed goal is a result, not an error. See bench/README.md.
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');
const { loadConfig } = require('./lib/config.cjs');
const { makeContext } = require('./lib/context.cjs');
const { describeMachine } = require('./lib/machine.cjs');
const { quiet } = require('./lib/proc.cjs');
const { Record } = require('./lib/record.cjs');
const { writeResults } = require('./lib/report.cjs');
const { killAll } = require('./lib/rpc.cjs');

const ROOT = join(__dirname, '..');
const say = (s) => process.stdout.write(`[bench] ${s}\n`);

function tools(resticBin) {
  const first = (s) => s.split('\n')[0];
  return {
    gcore: first(quiet('gdb', ['--version'])).replace(/^GNU gdb\s*/, 'GDB '),
    restic: first(quiet(resticBin, ['version'])).replace(/^restic\s*/, '').replace(/ compiled.*$/, ''),
    zstd: (/v[\d.]+/.exec(quiet('zstd', ['--version'])) ?? [''])[0],
    redis: (/v=([\d.]+)/.exec(quiet('redis-server', ['--version'])) ?? ['', ''])[1],
    openssl: first(quiet('openssl', ['version'])).split(' ').slice(0, 2).join(' '),
  };
}

const PHASES = [
  ['services', () => require('./phases/services.cjs')],
  ['hash stage', () => require('./phases/hash.cjs')],
  ['synthetic', () => require('./phases/synthetic.cjs')],
  ['many VMAs', () => require('./phases/vmas.cjs')],
  ['node heap', () => require('./phases/heap.cjs').single],
  ['python heap', () => require('./phases/heap.cjs').python],
  ['fleet of 3 node', () => require('./phases/heap.cjs').nodeFleet],
  ['fleet of 3 data', () => require('./phases/heap.cjs').dataFleet],
  ['redis series', () => require('./phases/redis.cjs')],
  ['profiles', () => require('./phases/profile.cjs')],
];

async function main() {
  const conf = loadConfig();
  const { cfg, runId } = conf;
  const rec = new Record();
  const started = new Date();
  const t0 = performance.now();
  const machine = describeMachine();
  say(`${cfg.smoke ? 'smoke' : 'full'} run ${runId}: synthetic ${cfg.sizeMiB} MiB, series of ${cfg.series}; ${machine.nproc} cores, ${machine.memTotalGiB} GiB, ${machine.kernel}`);
  const ctx = makeContext(conf, rec);
  rec.load('start');
  const only = process.env.PV_BENCH_ONLY ? process.env.PV_BENCH_ONLY.split(',') : undefined;
  try {
    for (const [name, load] of PHASES) {
      if (only && !only.some((o) => name.startsWith(o))) continue;
      if (name === 'profiles' && !cfg.profile) continue;
      const p0 = performance.now();
      say(`${name}...`);
      try {
        await load()(ctx);
      } catch (e) {
        say(`${name} FAILED: ${e.message}`);
        if (e.remoteStack) process.stderr.write(`${e.remoteStack}\n`);
        rec.error(name, e);
      }
      say(`${name} done in ${((performance.now() - p0) / 1000).toFixed(1)} s`);
    }
  } finally {
    rec.load('end');
    await ctx.cleanup().catch((e) => rec.error('cleanup', e));
    killAll();
  }
  const res = {
    run: { id: runId, smoke: cfg.smoke, started: started.toISOString(), seconds: (performance.now() - t0) / 1000 },
    machine, tools: tools(cfg.restic), config: cfg, rows: rec.rows, goals: rec.goals, rss: rec.rss, loads: rec.loads,
    profiles: rec.profiles, errors: rec.errors, data: rec.data,
  };
  const md = writeResults(res, cfg.resultsDir, cfg.updateDocs ? join(ROOT, 'docs', 'benchmarks.md') : undefined);
  process.stdout.write(`\n${md}\n`);
  say(`wrote ${join(cfg.resultsDir, 'latest.json')} and latest.md${cfg.smoke ? '' : ', full.json and full.md'}${cfg.updateDocs ? ' and docs/benchmarks.md' : ''}`);
  if (rec.errors.length) {
    say(`${rec.errors.length} phase(s) failed: ${rec.errors.map((e) => e.phase).join(', ')}`);
    process.exitCode = 1;
  }
}

// An await that can never settle would let node exit quietly with status 0 and no results: make it loud.
let finished = false;
process.on('exit', (code) => {
  if (finished) return;
  process.stderr.write('[bench] ERROR: the run ended before it finished (a promise that never settled)\n');
  if (code === 0) process.exitCode = 1;
});

main().then(() => (finished = true), (e) => {
  finished = true;
  process.stderr.write(`[bench] ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
