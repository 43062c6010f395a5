// A Node.js process holding a large heap of small objects, the shape of a cache or an in-memory index.
//   node --expose-gc heap.js <MiB> <commonSeed> <ownSeed> <ownShare>
// Builds records until the V8 heap holds <MiB>: the first (1 - ownShare) from commonSeed (what processes
// of one program share: the same data loaded the same way), the rest from ownSeed. Prints one JSON line
// when ready, then idles until stdin reaches EOF, answering one JSON line to each command line:
//   churn <pct>  work like a cache in service: every 100 ms of running time, evict the oldest pct/10 %
//                of the records for fresh ones (the old ones become garbage), update a quarter as many
//                in place at random and serve four times as many reads as JSON (short-lived garbage);
//                0 stops. Counted in running time, so a stopped process catches nothing up.
//   stats        records replaced, updated and read so far, GCs by kind, heap used, RSS
'use strict';
const [mib, commonSeed, ownSeed, ownShare] = process.argv.slice(2).map(Number);
const target = mib * 2 ** 20;

function prng(seed) { // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHA = Buffer.from('abcdefghijklmnopqrstuvwxyz0123456789');
const chars = Buffer.alloc(256);
/** A flat one-byte string (not a rope of one-character strings). */
function word(r, min, max) {
  const n = min + Math.floor(r() * (max - min));
  for (let i = 0; i < n; i++) chars[i] = ALPHA[Math.floor(r() * ALPHA.length)];
  return chars.latin1Slice(0, n);
}

function record(r, id) {
  return {
    id,
    name: word(r, 6, 14),
    email: `${word(r, 4, 10)}@${word(r, 4, 8)}.example`,
    score: r() * 1000,
    visits: Math.floor(r() * 1e6),
    tags: [word(r, 3, 8), word(r, 3, 8), word(r, 3, 8)],
    address: { street: word(r, 8, 20), city: word(r, 5, 12), zip: Math.floor(r() * 99999) },
    note: word(r, 40, 160),
  };
}

const records = new Map();
const v8 = require('node:v8');
const used = () => v8.getHeapStatistics().used_heap_size;
const sharedUntil = target * (1 - ownShare);
let r = prng(commonSeed);
let own = false;
for (let id = 0, heap = 0; heap < target; id++) {
  if (id % 1024 === 0) heap = used();
  if (!own && heap >= sharedUntil) {
    r = prng(ownSeed);
    own = true;
  }
  records.set(id, record(r, id));
}
if (global.gc) global.gc();
const m = process.memoryUsage();
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
say({ pid: process.pid, records: records.size, heapUsed: m.heapUsed, rss: m.rss });

// Service work on command, from a stream of its own so the records above stay as they were built.
const { PerformanceObserver, constants } = require('node:perf_hooks');
const GC_KINDS = { [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor', [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major', [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental', [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb' };
const gcs = { minor: 0, major: 0, incremental: 0, weakcb: 0 };
const cr = prng(ownSeed + 0x5eed);
const churn = { pct: 0, next: 0, replaced: 0, updated: 0, read: 0, bytesServed: 0, timer: undefined, observer: undefined };
function churnTick() {
  // A cache in service: evicts its oldest entries for fresh ones (slot by slot, in the order they were
  // built and then replaced), updates a quarter as many at random and serves reads four times as many.
  const n = Math.max(1, Math.round((records.size * churn.pct) / 1000));
  const updates = Math.max(1, Math.round(n / 4));
  for (let i = 0; i < n; i++) {
    records.set(churn.next, record(cr, churn.next));
    churn.next = (churn.next + 1) % records.size;
  }
  for (let i = 0; i < updates; i++) {
    const o = records.get(Math.floor(cr() * records.size));
    o.visits++;
    o.score = cr() * 1000;
  }
  for (let i = 0; i < 4 * n; i++) churn.bytesServed += JSON.stringify(records.get(Math.floor(cr() * records.size))).length;
  churn.replaced += n;
  churn.updated += updates;
  churn.read += 4 * n;
}
const commands = {
  churn(pct) {
    churn.pct = Number(pct) || 0;
    clearInterval(churn.timer);
    churn.timer = churn.pct > 0 ? setInterval(churnTick, 100) : undefined;
    churn.observer ??= new PerformanceObserver((l) => {
      for (const e of l.getEntries()) if (GC_KINDS[e.detail?.kind]) gcs[GC_KINDS[e.detail.kind]]++;
    });
    churn.observer.observe({ entryTypes: ['gc'] });
    return { churn: churn.pct };
  },
  stats() {
    const u = process.memoryUsage();
    return { records: records.size, replaced: churn.replaced, updated: churn.updated, read: churn.read, bytesServed: churn.bytesServed, gcs, heapUsed: u.heapUsed, rss: u.rss };
  },
};
const lines = require('node:readline').createInterface({ input: process.stdin });
lines.on('line', (l) => {
  const [cmd, ...args] = l.trim().split(/\s+/);
  say(commands[cmd] ? commands[cmd](...args) : { error: `unknown command ${cmd}` });
});
lines.on('close', () => process.exit(0));
