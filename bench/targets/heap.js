// A Node.js process holding a large heap of small objects, the shape of a cache or an in-memory index.
//   node --expose-gc heap.js <MiB> <commonSeed> <ownSeed> <ownShare>
// Builds records until the V8 heap holds <MiB>: the first (1 - ownShare) from commonSeed (what processes
// of one program share: the same data loaded the same way), the rest from ownSeed. Prints one JSON line
// when ready, then idles until stdin reaches EOF.
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
process.stdout.write(`${JSON.stringify({ pid: process.pid, records: records.size, heapUsed: m.heapUsed, rss: m.rss })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
