'use strict';
// The processes the bench snapshots: the synthetic C target, Node.js and CPython heaps, and redis under
// redis-benchmark, all on this host (redis on 127.0.0.1 only).
const { execFileSync } = require('node:child_process');
const { createServer } = require('node:net');
const { join } = require('node:path');
const { run, sleep, spawnTethered, startTarget } = require('./proc.cjs');

const TARGETS = join(__dirname, '..', 'targets');

function buildSynth(scratch) {
  const bin = join(scratch, 'synth');
  execFileSync('gcc', ['-O2', '-o', bin, join(TARGETS, 'synth.c')]);
  return bin;
}

/** The synthetic target: quarters of zeros, one page repeated, one 1 MiB block repeated, fresh random. */
async function startSynth(bin, mib, seed) {
  const t = await startTarget(bin, [String(mib), String(seed)], { label: `synth ${mib} MiB` });
  return {
    ...t,
    /** Rewrites `permille` of the fresh quarter's pages; resolves with the number of pages changed. */
    mutate: async (permille) => Number((await t.ask(`m ${permille}`)).split(' ')[1]),
  };
}

function buildVmas(scratch) {
  const bin = join(scratch, 'vmas');
  execFileSync('gcc', ['-O2', '-o', bin, join(TARGETS, 'vmas.c')]);
  return bin;
}

/** A process of `count` one-page VMAs side by side (neighbours differ in protection: none merge). */
function startVmas(bin, count) {
  return startTarget(bin, [String(count)], { label: `${count} VMAs` });
}

/** The commands the heap targets answer (ask only while the target runs: a stopped one answers nothing). */
function heapService(t) {
  return {
    ...t,
    /** Starts evicting the oldest `pct` % of the records a second for fresh ones (updating ¼ as many, serving 4× as many reads); 0 stops. */
    churn: async (pct) => JSON.parse(await t.ask(`churn ${pct}`)),
    /** Records replaced, updated and read so far, GC counts, RSS. */
    stats: async () => JSON.parse(await t.ask('stats')),
  };
}

/** A Node.js process with `mib` of small objects on its heap; `ownShare` of them differ between seeds. */
async function startHeap(mib, commonSeed, ownSeed, ownShare) {
  return heapService(await startTarget(process.execPath, [
    '--expose-gc', `--max-old-space-size=${Math.max(512, mib * 3)}`, join(TARGETS, 'heap.js'),
    String(mib), String(commonSeed), String(ownSeed), String(ownShare),
  ], { label: `node heap ${mib} MiB` }));
}

/** A CPython process with `mib` of small objects (dicts, strings, lists) on its heap. */
async function startPyHeap(mib, seed) {
  return heapService(await startTarget('python3', [join(TARGETS, 'pyheap.py'), String(mib), String(seed)], { label: `python heap ${mib} MiB` }));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** redis-server on 127.0.0.1 with persistence off (the bench snapshots its memory, nothing else). */
async function startRedis(dir) {
  const port = await freePort();
  const server = await spawnTethered('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
    '--protected-mode', 'yes', '--daemonize', 'no', '--loglevel', 'warning',
  ], { stdio: 'inherit' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if (execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: ['ignore', 'pipe', 'ignore'] }).toString().includes('PONG')) break;
    } catch {
      // not up yet
    }
    if (!server.running() || Date.now() > deadline) throw new Error(`redis-server on port ${port} did not start`);
    await sleep(100);
  }
  const info = () => execFileSync('redis-cli', ['-p', String(port), 'info', 'memory']).toString();
  return {
    pid: server.pid, port, stop: server.stop,
    usedMemory: () => Number(/used_memory:(\d+)/.exec(info())[1]),
    rss: () => Number(/used_memory_rss:(\d+)/.exec(info())[1]),
    keys: () => Number(execFileSync('redis-cli', ['-p', String(port), 'dbsize']).toString().trim()),
  };
}

/** Fills redis: `requests` SETs of `valueBytes` over a keyspace of `keys`, pipelined, bounded in count. */
function fillRedis(port, { requests, keys, valueBytes }) {
  return run('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set', '-n', String(requests),
    '-r', String(keys), '-d', String(valueBytes), '-P', '16', '-c', '4', '-q'], { timeoutMs: 10 * 60_000 });
}

/**
 * A running redis-benchmark (SETs over the keyspace, 4 clients, no pipelining): the load under which the
 * series is taken. Bounded in count (`requests`) and in time (stop()).
 */
function loadRedis(port, { requests, keys, valueBytes }) {
  return spawnTethered('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-t', 'set', '-n', String(requests),
    '-r', String(keys), '-d', String(valueBytes), '-c', '4', '-q']);
}

/** A tiny process to warm a pipeline up with (JIT of the cold and incremental paths, Kafka group join) before anything is timed. */
function startTiny() {
  return spawnTethered('sleep', ['3600']);
}

module.exports = { buildSynth, startSynth, buildVmas, startVmas, startHeap, startPyHeap, startRedis, fillRedis, loadRedis, startTiny };
