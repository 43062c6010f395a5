'use strict';
// What a run found: table rows (a figure, its peer measured in the same run, the ratio, the goal), goals,
// peak RSS per stage, load averages per phase, CPU profiles, the raw samples, and any errors.
const { loadAvg } = require('./machine.cjs');

const MB = 1e6;
const MiB = 2 ** 20;

const fmt = {
  ms: (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`),
  rate: (bytes, ms) => {
    const v = bytes / MB / (ms / 1000);
    return v >= 1000 ? `${(v / 1000).toFixed(2)} GB/s` : `${Math.round(v)} MB/s`;
  },
  mib: (bytes) => `${(bytes / MiB).toFixed(bytes < 10 * MiB ? 2 : 1)} MiB`,
  x: (r) => `${r >= 10 ? r.toFixed(0) : r.toFixed(2)}×`,
  /** peerMs against ours: "3.2× faster", or "1.5× slower" when the peer was quicker. */
  faster: (peerMs, ms) => (peerMs >= ms ? `${fmt.x(peerMs / ms)} faster` : `${fmt.x(ms / peerMs)} slower`),
  pct: (r) => `${(100 * r).toFixed(0)}%`,
  /** Where a tenant's bytes are: "packs 57.4, maps 14.9, index 2.7 MiB". */
  split: (byFolder) => `${Object.entries(byFolder).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${(v / MiB).toFixed(1)}`).join(', ')} MiB`,
  pages: (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)} M pages/s` : `${Math.round(n / 1000)} k pages/s`),
};

class Record {
  constructor() {
    this.rows = [];
    this.goals = [];
    this.rss = [];
    this.loads = [];
    this.profiles = {};
    this.data = {};
    this.errors = [];
  }

  /** A table row: `pv` is pagevault's figure, `peer` the same figure of the peer in this run. */
  row(workload, figure, pv, peer = '', ratio = '', goal = '') {
    this.rows.push({ workload, figure, pv, peer, ratio, goal });
  }

  /** A goal checked against a measured value; returns the table cell: `short` (the target) and met/missed. */
  goal(name, met, detail, short = name) {
    this.goals.push({ name, met, detail });
    return `${short}: ${met ? 'met' : '**missed**'}`;
  }

  stage(stage, usage, note = '') {
    if (usage?.maxRssKiB) this.rss.push({ stage, maxRssMiB: +(usage.maxRssKiB / 1024).toFixed(1), cpuMs: Math.round((usage.userCpuMs ?? 0) + (usage.systemCpuMs ?? 0)) || undefined, note });
  }

  load(phase) {
    this.loads.push({ phase, at: new Date().toISOString(), ...loadAvg() });
  }

  error(phase, e) {
    this.errors.push({ phase, message: e.message, stack: e.remoteStack ?? e.stack });
  }
}

module.exports = { Record, fmt, MB, MiB };
