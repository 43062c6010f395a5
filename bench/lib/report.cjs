'use strict';
// Writes what a run found: bench/results/latest.json (everything, raw samples included) and latest.md (the
// tables); a full run also writes full.{json,md} and the generated block of docs/benchmarks.md.
const { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } = require('node:fs');
const { join } = require('node:path');

const BEGIN = '<!-- bench:results:begin (written by npm run bench; edit outside this block) -->';
const END = '<!-- bench:results:end -->';

const cell = (s) => String(s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');

function table(head, rows) {
  return [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`, ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`)].join('\n');
}

function markdown(res) {
  const m = res.machine;
  const loads = res.loads.map((l) => l.one);
  const out = [];
  out.push(`### ${res.run.smoke ? 'Smoke' : 'Full'} run ${res.run.id}`, '');
  out.push(`Measured ${res.run.started.slice(0, 16).replace('T', ' ')} UTC in ${Math.round(res.run.seconds)} s on ${m.nproc} cores (${m.cpuModel}), ` +
    `${m.memTotalGiB} GiB, ${m.kernel}, Node.js ${m.node}; soft-dirty ${m.softDirty ? 'available' : 'not available (incrementals read and hash every page)'}. ` +
    `Load average (1 min) ${Math.min(...loads)}–${Math.max(...loads)} over the run on ${m.nproc} cores: the load counts the suite's own services and peers (Kafka, SeaweedFS, redis-benchmark, restic) and whatever else ran on the machine, so every figure is ` +
    `compared with its peer measured minutes apart in the same run, not with another run.`, '');
  out.push(`Peers: ${Object.entries(res.tools).map(([k, v]) => `${k} ${v}`).join('; ')}.`, '');
  const c = res.config;
  out.push(`Sizes: synthetic ${c.sizeMiB} MiB, node and python heaps ${c.heapMiB} MiB (replacing ${c.churnPct}% of their records a second), fleet 3 × ${c.fleetMiB} MiB, ` +
    `redis ${c.redisKeys} keys of ${c.redisValueBytes} B; series of ${c.series} (heaps ${c.heapSeries}), each tick ${c.intervalMs / 1000} s after the last one's peers finished. ` +
    'Logical = the pages a snapshot holds (data + zero pages, 4 KiB each; file-backed pages a restore rereads are not counted); ' +
    'MB/s and GB/s are 10^6 and 10^9 logical bytes a second; sizes in MiB. Stored = every object under the tenant\'s (or the restic ' +
    'repository\'s) prefix in the bucket, metadata included.', '');
  out.push(table(['workload', 'figure', 'pagevault', 'peer, same run', 'ratio', 'goal'], res.rows.map((r) => [r.workload, r.figure, r.pv, r.peer, r.ratio, r.goal])), '');
  out.push('#### Goals', '', ...res.goals.map((g) => `- **${g.met ? 'met' : 'missed'}** — ${g.name} (${g.detail})`), '');
  out.push('#### Peak RSS by stage (each stage a process of its own)', '');
  out.push(table(['stage', 'peak RSS', 'CPU time'], res.rss.map((r) => [r.stage, `${r.maxRssMiB} MiB`, r.cpuMs ? `${(r.cpuMs / 1000).toFixed(1)} s` : ''])), '');
  if (Object.keys(res.profiles).length) {
    out.push('#### Where the time goes: CPU profiles (node --cpu-prof, self time)', '');
    for (const [name, p] of Object.entries(res.profiles)) {
      out.push(`**${name}** — ${(p.totalMs / 1000).toFixed(1)} s profiled. By area: ${p.areas.map((a) => `${a.name} ${a.pct}%`).join(', ')}.`, '');
      out.push(table(['function (self time)', 'ms', '%', 'mostly called from'], p.functions.map((f) => [`\`${f.name}\``, f.ms, f.pct, f.via ? `\`${f.via}\` (${f.viaPct}%)` : ''])), '');
      const w = p.workerThreads;
      if (w) {
        out.push(`Its ${w.threads} worker threads together: ${(w.totalMs / 1000).toFixed(1)} s profiled; by area: ${w.areas.map((a) => `${a.name} ${a.pct}%`).join(', ')}; ` +
          `top functions: ${w.functions.map((f) => `\`${f.name}\` ${f.pct}%`).join(', ')}.`, '');
      }
    }
  }
  out.push('#### Load average per phase', '');
  out.push(table(['phase', '1 min', '5 min', '15 min'], res.loads.map((l) => [l.phase, l.one, l.five, l.fifteen])), '');
  if (res.errors.length) out.push('#### Errors', '', ...res.errors.map((e) => `- ${e.phase}: ${e.message}`), '');
  return out.join('\n');
}

function writeAtomic(file, text) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

function writeResults(res, resultsDir, docsFile) {
  mkdirSync(resultsDir, { recursive: true });
  const md = markdown(res);
  const json = `${JSON.stringify(res, null, 1)}\n`;
  writeAtomic(join(resultsDir, 'latest.json'), json);
  writeAtomic(join(resultsDir, 'latest.md'), `${md}\n`);
  // The last full run's record survives the smoke runs CI makes in the same tree.
  if (!res.run.smoke) {
    writeAtomic(join(resultsDir, 'full.json'), json);
    writeAtomic(join(resultsDir, 'full.md'), `${md}\n`);
  }
  if (docsFile) {
    const doc = existsSync(docsFile) ? readFileSync(docsFile, 'utf8') : `# Benchmarks\n\n${BEGIN}\n${END}\n`;
    const a = doc.indexOf(BEGIN);
    const b = doc.indexOf(END);
    const block = `${BEGIN}\n\n${md}\n${END}`;
    writeAtomic(docsFile, a >= 0 && b > a ? doc.slice(0, a) + block + doc.slice(b + END.length) : `${doc.trimEnd()}\n\n${block}\n`);
  }
  return md;
}

module.exports = { writeResults, markdown };
