'use strict';
// The synthetic target (quarters: zeros, one page repeated, a 1 MiB block repeated, fresh random): the read
// ceiling against capture, end to end embedded and through Kafka + S3 against gcore + restic, restores
// against gcore, then an incremental after changePct% of the pages were rewritten, and what each stored.
const { rmSync } = require('node:fs');
const { join } = require('node:path');
const { startWorker } = require('../lib/rpc.cjs');
const { buildSynth, startSynth } = require('../lib/targets.cjs');
const { gcore, zstd1 } = require('../lib/peers.cjs');
const { fmt, MB } = require('../lib/record.cjs');

const best = (xs, rate) => xs.reduce((a, b) => (rate(b) > rate(a) ? b : a));

/** The page-exact optimum: one constant page, one 1 MiB block, the fresh quarter. */
const optimumBytes = (mib) => 4096 + 2 ** 20 + (mib * 2 ** 20) / 4;

module.exports = async function synthetic(ctx) {
  const { cfg, rec, scratch } = ctx;
  const W = `synthetic ${cfg.sizeMiB} MiB`;
  const d = (rec.data.synthetic = { sizeMiB: cfg.sizeMiB, optimumBytes: optimumBytes(cfg.sizeMiB) });
  const target = await startSynth(buildSynth(scratch), cfg.sizeMiB, 7);
  ctx.defer(() => target.stop());
  const pid = target.pid;

  // The capture stage alone against the raw read ceiling.
  rec.load('synthetic: capture');
  const cap = await startWorker('capture');
  d.ceiling = [];
  d.capture = [];
  for (let i = 0; i < cfg.reps; i++) {
    d.ceiling.push(await cap.call('ceiling', { pid }));
    d.capture.push(await cap.call('capture', { pid }));
  }
  rec.stage('capture only (frames dropped)', await cap.exit());
  const ceil = best(d.ceiling, (c) => c.bytes / c.ms);
  const capt = best(d.capture, (c) => c.bytesRead / c.ms);
  const share = capt.bytesRead / capt.ms / (ceil.bytes / ceil.ms);
  rec.row(W, `raw read ceiling: process_vm_readv of the ${fmt.mib(ceil.bytes)} of present anonymous pages, 1024 pages a call (best of ${cfg.reps})`,
    fmt.rate(ceil.bytes, ceil.ms), '', '', '');
  rec.row(W, `capture throughput: captureSnapshot, frozen, frames dropped, their buffers reused (best of ${cfg.reps})`, fmt.rate(capt.bytesRead, capt.ms),
    `read ceiling ${fmt.rate(ceil.bytes, ceil.ms)}`, `${fmt.pct(share)} of it`,
    rec.goal('capture ≥ 50% of the read ceiling', share >= 0.5, fmt.pct(share), '≥ 50% of the ceiling'));

  // The peer, cold: gcore, then restic backup of the core into the same S3 server, and zstd -1 of it.
  rec.load('synthetic: gcore + restic (cold)');
  const restic = await ctx.restic('synthetic');
  const g1 = await gcore(pid, scratch, scratch);
  const r1 = await restic.backup([g1.file]);
  const z1 = await zstd1(g1.file, scratch);
  rmSync(g1.file);
  d.peerCold = { gcore: g1, restic: r1, zstd: z1 };
  rec.stage('gcore (gdb), synthetic', g1);
  rec.stage('restic backup of the core, synthetic', r1);
  rec.stage('zstd -1 of the core, synthetic', z1);
  rec.row(W, 'freeze time (target stopped) of a capture alone', fmt.ms(capt.freezeMs),
    `gcore stops it for the whole dump: ${fmt.ms(g1.ms)}`, fmt.faster(g1.ms, capt.freezeMs).replace('faster', 'shorter').replace('slower', 'longer'));

  // pagevault, cold: embedded (directory store, in-process log) and the fleet (Kafka + S3).
  rec.load('synthetic: pagevault cold');
  const tenant = ctx.tenant('synthetic');
  const storeDir = join(scratch, 'store');
  const emb = await ctx.embedded(storeDir, tenant);
  const e1 = await emb.call('snapshot', { pid });
  const fleet = await ctx.fleet();
  const topicAtCold = await ctx.fleetTopicEnds();
  const f1 = await fleet.snapshot(pid, tenant);
  const logical = (e1.counts.dataPages + e1.counts.zeroPages) * 4096;
  d.cold = { embedded: e1, fleet: f1, logicalBytes: logical };
  const peer1 = g1.ms + r1.ms;
  const peerText = (g, r) => `gcore ${fmt.ms(g.ms)} + restic ${fmt.ms(r.ms)} = ${fmt.ms(g.ms + r.ms)}`;
  const e2eRow = (figure, ms, frozenMs, peerMs, pText, rateGoal, rateMin) => {
    const rate = logical / MB / (ms / 1000);
    const goals = [
      rec.goal(`${figure}: ≥ 3× faster than gcore + restic`, peerMs / ms >= 3, fmt.x(peerMs / ms), '≥ 3× faster'),
      rec.goal(`${figure}: ${rateGoal}`, rate >= rateMin, fmt.rate(logical, ms), rateGoal),
    ];
    rec.row(W, `${figure}: freeze → manifest committed`, `${fmt.ms(ms)}, ${fmt.rate(logical, ms)} (frozen ${fmt.ms(frozenMs)})`,
      pText, fmt.faster(peerMs, ms), goals.join('; '));
  };
  e2eRow('cold snapshot, embedded', e1.ms, e1.capture.freezeMs, peer1, peerText(g1, r1), '≥ 500 MB/s', 500);
  e2eRow('cold snapshot, Kafka + S3', f1.e2eMs, f1.capture.freezeMs, peer1, peerText(g1, r1), '≥ 500 MB/s', 500);
  const k = rec.data.services?.kafka;
  const shipMs = f1.shippedWall - f1.startWall;
  const shipRate = f1.frameBytes / (shipMs / 1000);
  rec.row(W, 'cold, agent → Kafka: frames shipped until Kafka acknowledged the last (spooled on local disk: the target thaws after the capture)',
    `${fmt.rate(f1.frameBytes, shipMs)} (${fmt.mib(f1.frameBytes)} of frames; target frozen ${fmt.ms(f1.capture.freezeMs)}); compactor committed ${fmt.ms(f1.commit.wall - f1.shippedWall)} after the last ack`,
    k ? `Kafka's own Java producer: ${fmt.rate(k.bytesPerSec, 1000)}` : '', k ? `${fmt.pct(shipRate / k.bytesPerSec)} of it` : '');

  // The freeze goal: in the default mode the target stays frozen no longer than the read itself —
  // here the time this snapshot's read calls took (process_vm_readv, /proc/PID/mem), inside the freeze.
  const frozen = f1.capture.freezeMs;
  const readIn = f1.capture.readMs;
  rec.row(W, 'freeze time, default mode (the agent: capture, frames spooled on local disk, then thaw), cold',
    `frozen ${fmt.ms(frozen)}, of which ${fmt.ms(readIn)} in read calls`,
    `the read itself: ${fmt.ms(readIn)} (a capture alone: frozen ${fmt.ms(capt.freezeMs)}, ${fmt.ms(capt.readMs)} in read calls)`,
    `${fmt.x(frozen / readIn)} the read`,
    rec.goal('freeze time no longer than the read itself (default mode, agent)', frozen <= readIn, fmt.x(frozen / readIn), 'freeze ≤ the read'));

  // The compactor alone: the cold's frames, already in Kafka, replayed by a compactor of its own into an
  // empty bucket (hash + dedup + compress + upload, nothing else running), against restic's backup of the
  // core (chunk + hash + dedup + compress + upload of the same memory).
  rec.load('synthetic: compactor alone');
  const rp = await ctx.replayCompactor(topicAtCold, f1.id);
  rec.stage('compactor replaying the cold from Kafka into an empty bucket', rp.usage);
  const replayPages = rp.commits.reduce((n, c) => n + c.counts.dataPages, 0);
  const replayLogical = rp.commits.reduce((n, c) => n + (c.counts.dataPages + c.counts.zeroPages) * c.pageSize, 0);
  d.compactorAlone = { ms: rp.ms, dataPages: replayPages, logicalBytes: replayLogical, snapshots: rp.commits.length };
  rec.row(W, `compactor alone: the cold's frames replayed from Kafka into an empty bucket (hash + dedup + compress + upload)`,
    `${fmt.rate(replayLogical, rp.ms)}, ${fmt.pages((replayPages / rp.ms) * 1000)} of data (${fmt.ms(rp.ms)})`,
    `restic backup of the core: ${fmt.rate(g1.bytes, r1.ms)}`, `${fmt.x((replayLogical / rp.ms) / (g1.bytes / r1.ms))} its rate`);

  // Restores of the cold snapshot against gcore writing the same process.
  rec.load('synthetic: restore');
  const rs = await startWorker('restore', { store: { kind: 'dir', dir: storeDir }, tenant });
  const raw = await rs.call('raw', { id: e1.id, out: join(scratch, 'restore-raw') });
  const elf = await rs.call('elf', { id: e1.id, out: join(scratch, 'restore.core') });
  const rawNoSync = await rs.call('raw', { id: e1.id, out: join(scratch, 'restore-raw-nosync'), fsync: false });
  const elfNoSync = await rs.call('elf', { id: e1.id, out: join(scratch, 'restore-nosync.core'), fsync: false });
  const disk = await rs.call('disk', { out: join(scratch, 'disk-ceiling'), bytes: raw.bytesWritten });
  const diskNoSync = await rs.call('disk', { out: join(scratch, 'disk-ceiling'), bytes: raw.bytesWritten, fsync: false });
  const diskDirect = await rs.call('disk', { out: join(scratch, 'disk-ceiling'), bytes: raw.bytesWritten, direct: true });
  rec.stage('restore from the directory store (raw, ELF)', await rs.exit());
  const rs3 = await startWorker('restore', { store: ctx.s3config, tenant });
  const rawS3 = await rs3.call('raw', { id: f1.id, out: join(scratch, 'restore-raw-s3') });
  rec.stage('restore from S3 (raw)', await rs3.exit());
  d.restore = { raw, elf, rawNoSync, elfNoSync, rawS3, disk, diskNoSync, diskDirect };
  rec.row(W, `disk write ceiling: the ${fmt.mib(disk.bytes)} a raw restore writes, 8 MiB writes of one buffer, then fsync: with O_DIRECT (as durable restores write their pages); through the page cache (no fsync)`,
    `${fmt.ms(diskDirect.ms)}, ${fmt.rate(disk.bytes, diskDirect.ms)}; ${fmt.ms(disk.ms)}, ${fmt.rate(disk.bytes, disk.ms)} (${fmt.ms(diskNoSync.ms)}, ${fmt.rate(disk.bytes, diskNoSync.ms)})`, '', '', '');
  const restoreRow = (figure, r, goal) => {
    const rate = r.logicalBytes / 1e9 / (r.ms / 1000);
    rec.row(W, figure, `${fmt.ms(r.ms)}, ${fmt.rate(r.logicalBytes, r.ms)}`, `gcore writing the process: ${fmt.ms(g1.ms)}, ${fmt.rate(r.logicalBytes, g1.ms)}`,
      fmt.faster(g1.ms, r.ms), goal ? rec.goal(`${figure}: ≥ 1.5 GB/s`, rate >= 1.5, fmt.rate(r.logicalBytes, r.ms), '≥ 1.5 GB/s') : '');
  };
  restoreRow('restore → raw sparse images, directory store (fsync)', raw, true);
  restoreRow('restore → ELF core gdb opens, directory store (fsync)', elf, true);
  restoreRow('restore → raw sparse images, directory store, no fsync', rawNoSync, false);
  // gcore does not fsync its core: the like-for-like comparison of the two ELF writers.
  rec.row(W, 'restore → ELF core, directory store, no fsync (as gcore writes its core)', `${fmt.ms(elfNoSync.ms)}, ${fmt.rate(elfNoSync.logicalBytes, elfNoSync.ms)}`,
    `gcore writing the process: ${fmt.ms(g1.ms)}, ${fmt.rate(elfNoSync.logicalBytes, g1.ms)}`, fmt.faster(g1.ms, elfNoSync.ms),
    rec.goal('restore → ELF core faster than gcore (neither fsyncs)', elfNoSync.ms < g1.ms, fmt.faster(g1.ms, elfNoSync.ms), 'faster than gcore'));
  restoreRow('restore → raw sparse images, from S3 (fsync)', rawS3, true);

  // changePct% of all pages rewritten (in the fresh quarter), then incrementals and the peer again.
  rec.load('synthetic: incremental');
  d.changedPages = await target.mutate(cfg.changePct * 40);
  const e2 = await emb.call('snapshot', { pid, parent: e1.id });
  rec.stage('embedded pipeline (capture + compaction), synthetic', await emb.exit());
  const f2 = await fleet.snapshot(pid, tenant, f1.id);
  const g2 = await gcore(pid, scratch, scratch);
  const r2 = await restic.backup([g2.file]);
  const z2 = await zstd1(g2.file, scratch);
  rmSync(g2.file);
  d.incremental = { embedded: e2, fleet: f2, peer: { gcore: g2, restic: r2, zstd: z2 } };
  const peer2 = g2.ms + r2.ms;
  const inc = `incremental, ${cfg.changePct}% of pages changed`;
  e2eRow(`${inc}, embedded`, e2.ms, e2.capture.freezeMs, peer2, peerText(g2, r2), '≥ 1 GB/s', 1000);
  e2eRow(`${inc}, Kafka + S3`, f2.e2eMs, f2.capture.freezeMs, peer2, peerText(g2, r2), '≥ 1 GB/s', 1000);

  // What each kept of the two snapshots.
  const pv = await ctx.s3.usage(`t/${tenant}/`);
  const dir = await ctx.dirUsage(storeDir, `t/${tenant}/`);
  const rr = await ctx.s3.usage(`${restic.prefix}/`);
  d.stored = { s3: pv, dir, restic: rr, resticRawData: await restic.rawData(), zstd: z1.bytes + z2.bytes, cores: g1.bytes + g2.bytes };
  rec.row(W, `stored after cold + incremental (page-exact optimum of one: ${fmt.mib(d.optimumBytes)})`,
    `${fmt.mib(pv.bytes)} in S3 (${fmt.split(pv.byFolder)}; ${fmt.mib(dir.bytes)} in the directory store), ${fmt.x((2 * logical) / pv.bytes)} logical/physical`,
    `restic repo ${fmt.mib(rr.bytes)} (stats raw-data ${fmt.mib(d.stored.resticRawData.total_size)}); zstd -1 of the 2 cores ${fmt.mib(z1.bytes + z2.bytes)}`, `${fmt.x(pv.bytes / rr.bytes)} of restic's`);
};
