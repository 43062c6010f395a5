'use strict';
// Where the time goes, measured: a V8 .cpuprofile (node --cpu-prof) reduced to the functions with the most
// self time, and self time by area (pagevault libs, node internals, native, GC).
const { readFileSync, readdirSync } = require('node:fs');
const { join } = require('node:path');

function area(url, name) {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(idle)') return 'idle (waiting on I/O, the target, or the log)';
  if (name === '(program)') return 'native, outside JS (syscalls in FFI and bindings, compression)';
  const lib = /\/(?:libs|apps)\/([^/]+)\/dist\//.exec(url);
  if (lib) return `@pagevault/${lib[1]}`;
  const mod = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (mod) return mod[1];
  if (url.startsWith('node:')) return url;
  return url ? 'other JS' : `native: ${name}`;
}

/** Top `n` functions by self time, and self time by area, in ms and % of the profiles (one or several threads). */
function summarize(files, n = 12) {
  const fns = new Map();
  const areas = new Map();
  /** function → caller → self ms: which caller of a hot function pays for it. */
  const callers = new Map();
  let total = 0;
  const label = (f) => {
    const where = f.url ? `${f.url.replace(/^.*\/(libs|apps|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
    return `${f.functionName || '(anonymous)'} ${where}`.trim();
  };
  for (const file of [].concat(files)) {
    const p = JSON.parse(readFileSync(file, 'utf8'));
    const self = new Map(p.nodes.map((x) => [x.id, 0]));
    for (let i = 0; i < p.samples.length; i++) self.set(p.samples[i], self.get(p.samples[i]) + (p.timeDeltas[i] ?? 0) / 1000);
    const parent = new Map();
    const byId = new Map(p.nodes.map((x) => [x.id, x]));
    for (const x of p.nodes) for (const c of x.children ?? []) parent.set(c, x.id);
    for (const x of p.nodes) {
      const ms = self.get(x.id);
      if (!ms) continue;
      total += ms;
      const f = x.callFrame;
      const key = label(f);
      fns.set(key, (fns.get(key) ?? 0) + ms);
      const a = area(f.url, f.functionName);
      areas.set(a, (areas.get(a) ?? 0) + ms);
      // The nearest caller that is neither node's own plumbing nor the same function.
      let up = byId.get(parent.get(x.id));
      while (up && (label(up.callFrame) === key || /^node:internal\/(buffer|crypto|streams)|^node:buffer/.test(up.callFrame.url))) up = byId.get(parent.get(up.id));
      if (up) {
        const m = callers.get(key) ?? new Map();
        const ck = label(up.callFrame);
        m.set(ck, (m.get(ck) ?? 0) + ms);
        callers.set(key, m);
      }
    }
  }
  const top = (m, k) => [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k)
    .map(([name, ms]) => ({ name, ms: Math.round(ms), pct: +((100 * ms) / total).toFixed(1) }));
  const functions = top(fns, n).map((f) => {
    const c = callers.get(f.name);
    const via = c && [...c.entries()].sort((a, b) => b[1] - a[1])[0];
    return via && !f.name.startsWith('(') ? { ...f, via: via[0], viaPct: Math.round((100 * via[1]) / fns.get(f.name)) } : f;
  });
  return { totalMs: Math.round(total), functions, areas: top(areas, 10) };
}

/**
 * The profiles one process wrote in `dir` (node --cpu-prof writes one file a thread: CPU.<date>.<time>.
 * <pid>.<thread>.<seq>.cpuprofile): its main thread, and its worker threads merged (a hash pool, say).
 */
function summarizeProcess(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const parse = (f) => { const m = /\.(\d+)\.(\d+)\.\d+\.cpuprofile$/.exec(f); return { f, pid: m?.[1], tid: Number(m?.[2]) }; };
  const all = files.map(parse);
  const main = all.filter((x) => x.tid === 0).sort((a, b) => a.f.localeCompare(b.f)).pop();
  if (!main) throw new Error(`no CPU profile of a main thread in ${dir}`);
  const workers = all.filter((x) => x.pid === main.pid && x.tid !== 0).map((x) => join(dir, x.f));
  return { ...summarize(join(dir, main.f)), ...(workers.length ? { workerThreads: { threads: workers.length, ...summarize(workers, 6) } } : {}) };
}

module.exports = { summarize, summarizeProcess };
