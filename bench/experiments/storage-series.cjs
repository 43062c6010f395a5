'use strict';
// Experiment: what would bring pagevault's stored bytes down on the bench's redis series?
//
// Measures, on one periodic series of redis-server states under redis-benchmark load (the bench's fill,
// load, keyspace and interval: bench/phases/redis.cjs):
//   - the real pipeline's stored bytes (SnapshotIngest into a directory store, zstd level 1 and 3), split
//     into packs, index files, page-map nodes and manifests;
//   - the same series re-packed offline (bench/experiments/storage-sim.cjs, checked byte for byte against
//     the real pipeline at 16 pages, level 1) with blobs of 16…256 pages × zstd levels 1/3/6/9, new pages
//     grouped by arrival (address order), by VMA, or by content class; and, for scale, variants that change
//     the format: one zstd frame per snapshot, and each blob delta-compressed against the pages at the same
//     addresses in the previous state (or in the first state: one level of reference, as keyframes give);
//   - page maps with leaves of 1024…64 pages, raw and with every node zstd-compressed;
//   - the cost side on this machine: compress MB/s (pages in, one thread), inflate MB/s (pages out) and
//     µs and compressed bytes fetched per random single-page read (a whole blob inflates for one page);
//   - peers on gcore dumps of the same stopped states: a local restic repository (`restic backup` of each
//     core while redis runs again, as the bench does), zstd -1 and zstd -3 of each core.
//
// Run (as root or with CAP_SYS_PTRACE; redis-server, redis-benchmark, gcore, restic, zstd on PATH), after
// `npx nx run-many -t build`:
//   node bench/experiments/storage-series.cjs
// Takes ~10 min on 2 cores and ~5 GB of scratch (states and cores are kept until the end). Knobs:
// PV_BENCH_SERIES (10), PV_BENCH_INTERVAL_MS (2000), PV_BENCH_REDIS_KEYS (262144), PV_BENCH_REDIS_VALUE
// (512); PV_EXP_DIR (scratch; default /tmp/pv-storage-exp-<time>), PV_EXP_REUSE=1 (reuse the states, cores
// and restic repository already in PV_EXP_DIR: offline part only), PV_EXP_KEEP=1 (keep PV_EXP_DIR).
// Prints markdown tables and writes PV_EXP_DIR/results.json.
const { execFileSync } = require('node:child_process');
const { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');
const { captureSnapshot } = require('@pagevault/capture');
const { SnapshotWriter, idFromHex, idToHex, newSnapshotId } = require('@pagevault/format');
const { DirectoryObjectStore } = require('@pagevault/objstore');
const { Repository, SnapshotIngest } = require('@pagevault/repo');
const { fillRedis, loadRedis, startRedis } = require('../lib/targets.cjs');
const { gcore, zstd1 } = require('../lib/peers.cjs');
const { run, sleep } = require('../lib/proc.cjs');
const { frames, decodeState, packSeries, blobCost, mapSeries } = require('./storage-sim.cjs');

const env = process.env;
const opt = {
  series: Number(env.PV_BENCH_SERIES || 10),
  intervalMs: Number(env.PV_BENCH_INTERVAL_MS || 2000),
  keys: Number(env.PV_BENCH_REDIS_KEYS || 262144),
  valueBytes: Number(env.PV_BENCH_REDIS_VALUE || 512),
  dir: env.PV_EXP_DIR || `/tmp/pv-storage-exp-${new Date().toISOString().replace(/[-:T]/g, '').slice(0, 14)}`,
  reuse: env.PV_EXP_REUSE === '1',
  keep: env.PV_EXP_KEEP === '1',
};
const TENANT = 'exp';
const MiB = (b) => (b / 2 ** 20).toFixed(2);
const log = (...a) => console.error(`[${(performance.now() / 1000).toFixed(0)} s]`, ...a);
const state = (i) => join(opt.dir, `state-${String(i).padStart(2, '0')}.pvs`);
const core = (i) => join(opt.dir, `core-${String(i).padStart(2, '0')}`);

function resticEnv() {
  return { ...env, RESTIC_REPOSITORY: join(opt.dir, 'restic'), RESTIC_PASSWORD: 'pagevault-exp', RESTIC_CACHE_DIR: join(opt.dir, 'restic-cache') };
}

/** Bytes of every file under a directory, by first-level folder. */
function usage(dir) {
  const by = {};
  let total = 0;
  const walk = (d, top) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p, top ?? e.name);
      else {
        const n = statSync(p).size;
        by[top ?? '.'] = (by[top ?? '.'] ?? 0) + n;
        total += n;
      }
    }
  };
  if (existsSync(dir)) walk(dir, undefined);
  return { total, by };
}

/** The series: at each tick redis is stopped once, captured by pagevault and dumped by gcore; restic and zstd -1 back the core up while it runs. */
async function captureSeries() {
  const server = await startRedis(opt.dir);
  const steps = [];
  try {
    const spec = { keys: opt.keys, valueBytes: opt.valueBytes };
    log('filling redis');
    await fillRedis(server.port, { ...spec, requests: 2 * opt.keys });
    await run('restic', ['init'], { env: resticEnv(), tmp: opt.dir });
    const load = await loadRedis(server.port, { ...spec, requests: 200_000 * opt.series });
    try {
      for (let i = 0; i < opt.series; i++) {
        await sleep(opt.intervalMs);
        const loaded = load.running();
        const id = newSnapshotId();
        const out = [];
        let g;
        let t0;
        process.kill(server.pid, 'SIGSTOP'); // captureSnapshot leaves an already stopped process stopped
        try {
          t0 = performance.now();
          await captureSnapshot({ pid: server.pid, writer: new SnapshotWriter({ snapshotId: id, emit: (f) => out.push(f) }), tenant: TENANT, host: 'exp', drain: async () => undefined });
          t0 = performance.now() - t0;
          g = await gcore(server.pid, opt.dir, opt.dir);
        } finally {
          process.kill(server.pid, 'SIGCONT');
        }
        writeFileSync(state(i), Buffer.concat(out));
        const r = await run('restic', ['backup', '--json', '--host', 'exp', g.file], { env: resticEnv(), tmp: opt.dir });
        const summary = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((m) => m.message_type === 'summary');
        const z = await zstd1(g.file, opt.dir);
        renameSync(g.file, core(i));
        steps.push({ i, id: idToHex(id), loadRunning: loaded, captureMs: t0, gcoreMs: g.ms, coreBytes: g.bytes, resticMs: r.ms, resticAdded: summary?.data_added ?? 0, zstd1Bytes: z.bytes });
        log(`tick ${i}: core ${MiB(g.bytes)} MiB, restic +${MiB(summary?.data_added ?? 0)} MiB, zstd -1 ${MiB(z.bytes)} MiB${loaded ? '' : ' (load had ended)'}`);
      }
    } finally {
      await load.stop();
    }
  } finally {
    await server.stop();
  }
  writeFileSync(join(opt.dir, 'steps.json'), JSON.stringify(steps, null, 1));
  return steps;
}

/** The real pipeline over the captured states: each a full snapshot ingested into a directory store. */
async function realIngest(steps, level) {
  const root = join(opt.dir, `pv-L${level}`);
  rmSync(root, { recursive: true, force: true });
  const repo = new Repository(new DirectoryObjectStore(root), { compressionLevel: level });
  const t0 = performance.now();
  for (const s of steps) {
    const ingest = new SnapshotIngest(repo, idFromHex(s.id));
    let m;
    for (const f of frames(state(s.i))) m = (await ingest.accept(f)) ?? m;
    if (!m) throw new Error(`state ${s.i}: no manifest`);
  }
  const u = usage(join(root, 't', TENANT));
  return { level, ms: performance.now() - t0, total: u.total, by: u.by };
}

async function peers(steps) {
  let zstd3 = 0;
  for (const s of steps) {
    const out = `${core(s.i)}.zst`;
    execFileSync('zstd', ['-3', '-q', '-f', '-o', out, core(s.i)]);
    zstd3 += statSync(out).size;
    rmSync(out);
  }
  const raw = JSON.parse(execFileSync('restic', ['stats', '--mode', 'raw-data', '--json'], { env: resticEnv() }).toString().trim().split('\n').pop());
  return {
    cores: steps.reduce((n, s) => n + s.coreBytes, 0), zstd1: steps.reduce((n, s) => n + s.zstd1Bytes, 0), zstd3,
    restic: usage(join(opt.dir, 'restic')).total, resticRawData: raw.total_size,
  };
}

function table(head, rows) {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

async function main() {
  mkdirSync(opt.dir, { recursive: true });
  const load0 = execFileSync('cat', ['/proc/loadavg']).toString().trim();
  const steps = opt.reuse ? JSON.parse(readFileSync(join(opt.dir, 'steps.json'), 'utf8')) : await captureSeries();
  log('peers (zstd -3 of the cores, restic stats)');
  const peer = await peers(steps);
  log('real ingest, levels 1 and 3');
  const real = [await realIngest(steps, 1), await realIngest(steps, 3)];
  const manifests = real[0].by.snapshots ?? 0;

  log('decoding states');
  const seen = new Set();
  const states = steps.map((s) => decodeState(state(s.i), seen));
  const perState = states.map((st, i) => ({ i, dataPages: st.dataPages, zeroPages: st.zeroPages, distinctPages: st.distinctPages, newPages: st.fresh.data.length, newPct: (100 * st.fresh.data.length) / st.dataPages }));

  log('page maps');
  const maps = [1024, 512, 256, 128, 64].map((leaf) => ({ leaf, ...mapSeries(states, leaf) }));
  const map1024 = maps[0].storedBytes; // what pagevault stores: its own builder, each node zstd -1 when smaller

  const variants = [];
  const grid = [];
  for (const blobPages of [16, 32, 64, 128, 256]) for (const level of [1, 3, 6]) grid.push({ blobPages, level, order: 'arrival' });
  grid.push({ blobPages: 64, level: 9, order: 'arrival' }, { blobPages: 128, level: 9, order: 'arrival' });
  grid.push({ blobPages: 64, level: 3, order: 'vma' }, { blobPages: 16, level: 3, order: 'similar' }, { blobPages: 64, level: 3, order: 'similar' });
  grid.push({ blobPages: Infinity, level: 3, order: 'arrival' }, { blobPages: 16, level: 1, order: 'delta' }, { blobPages: 16, level: 3, order: 'delta' }, { blobPages: 64, level: 3, order: 'delta' });
  grid.push({ blobPages: 16, level: 1, order: 'delta0' }, { blobPages: 16, level: 3, order: 'delta0' });
  for (const g of grid) {
    const p = packSeries(states, g);
    const stored = p.blobBytes + p.trailerBytes + p.indexBytes + map1024 + manifests;
    variants.push({ ...g, blobBytes: p.blobBytes, packBytes: p.blobBytes + p.trailerBytes, indexBytes: p.indexBytes, pages: p.pages, stored,
      vsRestic: stored / peer.restic, bytesPerPage: p.blobBytes / p.pages, perState: p.perState });
    log(`${g.order} ${g.blobPages} pages L${g.level}: blobs ${MiB(p.blobBytes)} MiB, stored ${MiB(stored)} MiB`);
  }

  // The cost side on a fixed sample: the first 16384 new pages (64 MiB) of the series, in arrival order.
  log('compress and inflate timings');
  const sample = states.flatMap((st) => st.fresh.data).slice(0, 16384);
  const costs = [];
  for (const blobPages of [16, 32, 64, 128, 256]) for (const level of [1, 3, 6, 9]) costs.push(blobCost(sample, blobPages, level));
  const load1 = execFileSync('cat', ['/proc/loadavg']).toString().trim();
  const results = { opt, load: [load0, load1], steps, perState, peer, real, maps, variants, costs };
  writeFileSync(join(opt.dir, 'results.json'), JSON.stringify(results, (k, v) => (v === Infinity ? 'all' : v), 1));

  const base = variants.find((v) => v.blobPages === 16 && v.level === 1 && v.order === 'arrival');
  const md = [];
  md.push(`Series of ${opt.series}, ${opt.intervalMs} ms apart, redis ${opt.keys} keys of ${opt.valueBytes} B; load ${load0} → ${load1}.`);
  md.push(table(['state', 'data pages', 'distinct data pages', 'zero pages', 'new unique pages', 'new / data'], perState.map((s) => [s.i, s.dataPages, s.distinctPages, s.zeroPages, s.newPages, `${s.newPct.toFixed(1)}%`])));
  md.push(table(['real pipeline', 'stored MiB', 'packs', 'index', 'maps', 'manifests', 'vs restic', 'ingest s'], real.map((r) => [`zstd level ${r.level}, 16-page blobs`, MiB(r.total),
    MiB(r.by.packs ?? 0), MiB(r.by.index ?? 0), MiB(r.by.maps ?? 0), MiB(r.by.snapshots ?? 0), `${(r.total / peer.restic).toFixed(2)}×`, (r.ms / 1000).toFixed(1)])));
  md.push(`Model check at 16 pages, level 1, bytes: packs ${base.packBytes} (real ${real[0].by.packs}), index ${base.indexBytes} (real ${real[0].by.index}), maps ${map1024} (real ${real[0].by.maps}).`);
  md.push(`Peers: cores ${MiB(peer.cores)} MiB; restic repository ${MiB(peer.restic)} MiB (raw-data ${MiB(peer.resticRawData)}); zstd -1 of each core ${MiB(peer.zstd1)}; zstd -3 ${MiB(peer.zstd3)}.`);
  md.push(table(['order', 'blob pages', 'level', 'blob bytes MiB', 'B / new page', 'stored MiB (maps 1024 raw)', 'vs restic'],
    variants.map((v) => [v.order, v.blobPages === Infinity ? 'snapshot' : v.blobPages, v.level, MiB(v.blobBytes), v.bytesPerPage.toFixed(0), MiB(v.stored), `${v.vsRestic.toFixed(2)}×`])));
  md.push(table(['order', 'blob pages', 'level', 'blob MiB per state'], variants.filter((v) => v.level !== 6 && v.level !== 9 && (v.blobPages === 16 || v.order !== 'arrival'))
    .map((v) => [v.order, v.blobPages === Infinity ? 'snapshot' : v.blobPages, v.level, v.perState.map(MiB).join(' ')])));
  md.push(`Cost on ${sample.length} new pages (${MiB(sample.length * 4096)} MiB), one thread, best of 3:`);
  md.push(table(['blob pages', 'level', 'B / page (sample)', 'compress MB/s', 'inflate MB/s', 'µs per random page', 'KiB fetched per random page'],
    costs.map((c) => [c.blobPages, c.level, c.bytesPerPage.toFixed(0), c.compressMBs.toFixed(0), c.inflateMBs.toFixed(0), c.usPerRandomPage.toFixed(0), (c.fetchedPerRandomPage / 1024).toFixed(1)])));
  md.push(table(['leaf pages', 'nodes stored', 'leaves', 'raw MiB', 'of which page hashes', 'each node zstd -3, MiB', 'raw per state MiB'],
    maps.map((m) => [m.leaf, m.nodes, m.leaves, MiB(m.bytes), `${((100 * m.hashBytes) / m.bytes).toFixed(0)}%`, MiB(m.zBytes), m.perState.map(MiB).join(' ')])));
  console.log(md.join('\n\n'));
}

main().then(
  () => {
    if (!opt.keep) rmSync(opt.dir, { recursive: true, force: true });
    process.exit(0);
  },
  (e) => {
    console.error(e);
    console.error(`scratch kept in ${opt.dir}`);
    process.exit(1);
  },
);
