'use strict';
// The compactor's hash stage in isolation: SHA-256 of every 4 KiB page (one crypto.hash call a page, as
// SnapshotIngest used to), on this thread, on two worker threads over one shared buffer of random pages, and
// through the PageHasher the pipeline uses (native batch calls when built), alone and with its helper.
const { randomFillSync, hash } = require('node:crypto');
const { performance } = require('node:perf_hooks');
const { Worker } = require('node:worker_threads');

const PS = 4096;

/** Hashes pages [from, to) of buf round after round until `seconds` pass; returns pages hashed and ms. */
function hashFor(buf, from, to, seconds) {
  let pages = 0;
  const t0 = performance.now();
  let ms = 0;
  do {
    for (let p = from; p < to; p++) hash('sha256', buf.subarray(p * PS, (p + 1) * PS), 'buffer');
    pages += to - from;
    ms = performance.now() - t0;
  } while (ms < seconds * 1000);
  return { pages, ms };
}

const WORKER = `
const { workerData, parentPort } = require('node:worker_threads');
const { hashFor } = require(workerData.self);
parentPort.postMessage(hashFor(Buffer.from(workerData.sab), workerData.from, workerData.to, workerData.seconds));
`;

async function threads(sab, pages, n, seconds) {
  const t0 = performance.now();
  const per = Math.ceil(pages / n);
  const results = await Promise.all(Array.from({ length: n }, (_, k) => new Promise((resolve, reject) => {
    const w = new Worker(WORKER, { eval: true, workerData: { self: __filename, sab, from: k * per, to: Math.min(pages, (k + 1) * per), seconds } });
    w.once('message', resolve);
    w.once('error', reject);
  })));
  const ms = performance.now() - t0; // includes thread start-up, as a pool's first use would
  return { threads: n, pages: results.reduce((s, r) => s + r.pages, 0), ms };
}

/**
 * @pagevault/hashing's PageHasher (the calling thread plus one helper a spare core), fed as SnapshotIngest
 * feeds it: one page chunk (255 pages, one frame) a synchronous call.
 */
async function pageHasherRate(buf, pages, seconds, helpers) {
  const { PageHasher, sha256Implementation } = require('@pagevault/hashing');
  const hasher = new PageHasher(helpers);
  const chunk = 255;
  const out = Buffer.allocUnsafe(chunk * 32);
  let n = 0;
  const t0 = performance.now();
  let ms = 0;
  try {
    do {
      for (let p = 0; p + chunk <= pages; p += chunk) {
        hasher.hash(buf.subarray(p * PS, (p + chunk) * PS), chunk, PS, out);
        n += chunk;
      }
      ms = performance.now() - t0;
    } while (ms < seconds * 1000);
  } finally {
    await hasher.close();
  }
  return { threads: hasher.threads + 1, chunkPages: chunk, pages: n, ms, native: hasher.native, sha256: sha256Implementation() };
}

module.exports = async () => ({
  async run({ mib = 64, seconds = 2 }) {
    const sab = new SharedArrayBuffer(mib << 20);
    const buf = Buffer.from(sab);
    randomFillSync(buf);
    const pages = buf.length / PS;
    hashFor(buf, 0, Math.min(pages, 1024), 0); // warm up
    const one = hashFor(buf, 0, pages, seconds);
    const two = await threads(sab, pages, 2, seconds);
    const rate = (r) => r.pages / (r.ms / 1000);
    const { availableParallelism } = require('node:os');
    const solo = await pageHasherRate(buf, pages, seconds, 0);
    const pool = await pageHasherRate(buf, pages, seconds, Math.max(0, availableParallelism() - 1));
    return {
      single: { ...one, pagesPerSec: rate(one) },
      twoThreads: { ...two, pagesPerSec: rate(two) },
      solo: { ...solo, pagesPerSec: rate(solo) },
      pool: { ...pool, pagesPerSec: rate(pool) },
    };
  },
});
module.exports.hashFor = hashFor;
