'use strict';
// The compactor's hash stage alone: SHA-256 per 4 KiB page through node:crypto (a call a page) and through
// PageHasher (libs/hashing: native batch calls, SHA-NI two pages at a time where the CPU has it, else OpenSSL), one core and two, against OpenSSL's own loop
// on 4 KiB blocks (`openssl speed`), single and -multi 2. Goal: ≥ 600 k pages/s on both cores.
const { startWorker } = require('../lib/rpc.cjs');
const { run } = require('../lib/proc.cjs');
const { fmt } = require('../lib/record.cjs');

async function opensslPagesPerSec(seconds, multi) {
  const args = ['speed', '-seconds', String(Math.max(1, Math.round(seconds))), '-bytes', '4096', '-mr', ...(multi ? ['-multi', String(multi)] : []), 'sha256'];
  const r = await run('openssl', args);
  const line = r.stdout.split('\n').filter((l) => l.startsWith('+F:')).pop();
  return Number(line.split(':')[3]) / 4096;
}

module.exports = async function hashPhase(ctx) {
  const { cfg, rec } = ctx;
  rec.load('hash');
  const w = await startWorker('hash');
  const r = await w.call('run', { mib: cfg.hashMiB, seconds: cfg.hashSeconds });
  rec.stage('hash stage (main thread, then 2 worker threads)', await w.exit());
  const one = await opensslPagesPerSec(cfg.hashSeconds);
  const two = await opensslPagesPerSec(cfg.hashSeconds, 2);
  rec.data.hash = { node: r, openssl: { single: one, multi2: two } };
  const W = `hash stage (${cfg.hashMiB} MiB of random pages)`;
  rec.row(W, 'SHA-256 per 4 KiB page, one core (one crypto.hash call a page)', fmt.pages(r.single.pagesPerSec),
    `openssl speed sha256 -bytes 4096: ${fmt.pages(one)}`, `${fmt.pct(r.single.pagesPerSec / one)} of it`);
  rec.row(W, 'SHA-256 per 4 KiB page, two worker threads', fmt.pages(r.twoThreads.pagesPerSec),
    `openssl speed -multi 2: ${fmt.pages(two)}`, `${fmt.pct(r.twoThreads.pagesPerSec / two)} of it`);
  const how = !r.pool.native ? 'node:crypto: the native library was not built'
    : r.pool.sha256 === 'sha-ni-x2' ? 'native batch calls, SHA-NI two pages at a time' : 'native batch calls into OpenSSL';
  rec.row(W, `SHA-256 through PageHasher, the calling thread alone (${how}; one ${r.solo.chunkPages}-page chunk a call, as the compactor feeds it)`,
    fmt.pages(r.solo.pagesPerSec), `openssl speed sha256 -bytes 4096: ${fmt.pages(one)}`, `${fmt.pct(r.solo.pagesPerSec / one)} of it`);
  rec.row(W, `SHA-256 through PageHasher, the hash stage (${r.pool.threads} threads: the caller and ${r.pool.threads - 1} helper; ${how})`,
    fmt.pages(r.pool.pagesPerSec), `openssl speed -multi 2: ${fmt.pages(two)}`, `${fmt.pct(r.pool.pagesPerSec / two)} of it`,
    rec.goal('hash stage ≥ 600 k pages/s on both cores', r.pool.pagesPerSec >= 600_000, fmt.pages(r.pool.pagesPerSec), '≥ 600 k pages/s'));
};
