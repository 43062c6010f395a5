'use strict';
// A process split into many one-page VMAs (cfg.vmaCount, side by side, neighbours differing in
// protection): what each VMA costs a capture while the target is frozen, a snapshot end to end, and the
// restores, against gcore dumping the same process (gdb walks the same maps).
const { join } = require('node:path');
const { startWorker } = require('../lib/rpc.cjs');
const { buildVmas, startVmas } = require('../lib/targets.cjs');
const { gcore } = require('../lib/peers.cjs');
const { fmt } = require('../lib/record.cjs');
const { rmSync } = require('node:fs');

module.exports = async function vmas(ctx) {
  const { cfg, rec, scratch } = ctx;
  const n = cfg.vmaCount;
  const W = `${n} one-page VMAs`;
  const d = (rec.data.vmas = { count: n });
  const target = await startVmas(buildVmas(scratch), n);
  ctx.defer(() => target.stop());
  const pid = target.pid;
  const perVma = (ms) => `${((ms * 1000) / n).toFixed(1)} µs a VMA`;

  rec.load('vmas: capture');
  const cap = await startWorker('capture');
  d.capture = [];
  for (let i = 0; i < cfg.reps; i++) d.capture.push(await cap.call('capture', { pid }));
  rec.stage(`capture only, ${n} VMAs (frames dropped)`, await cap.exit());
  const capt = d.capture.reduce((a, b) => (b.freezeMs < a.freezeMs ? b : a));
  const g = await gcore(pid, scratch, scratch);
  rmSync(g.file, { force: true });
  d.gcore = g;
  rec.stage(`gcore (gdb), ${n} VMAs`, g);
  rec.row(W, `freeze time of a capture alone (best of ${cfg.reps}; frames dropped)`, `${fmt.ms(capt.freezeMs)}, ${perVma(capt.freezeMs)} (${fmt.ms(capt.readMs)} in ${capt.readCalls} read calls)`,
    `gcore stops it for the whole dump: ${fmt.ms(g.ms)}`, fmt.faster(g.ms, capt.freezeMs).replace('faster', 'shorter').replace('slower', 'longer'), '');

  rec.load('vmas: embedded snapshot and restores');
  const storeDir = join(scratch, 'store-vmas');
  const tenant = ctx.tenant('vmas');
  const emb = await ctx.embedded(storeDir, tenant);
  const e = await emb.call('snapshot', { pid });
  rec.stage(`embedded pipeline, ${n} VMAs`, await emb.exit());
  d.embedded = e;
  rec.row(W, 'cold snapshot, embedded: freeze → manifest committed', `${fmt.ms(e.ms)} (frozen ${fmt.ms(e.capture.freezeMs)})`,
    `gcore: ${fmt.ms(g.ms)}`, fmt.faster(g.ms, e.ms), '');
  const rs = await startWorker('restore', { store: { kind: 'dir', dir: storeDir }, tenant });
  const raw = await rs.call('raw', { id: e.id, out: join(scratch, 'restore-raw-vmas') });
  const elf = await rs.call('elf', { id: e.id, out: join(scratch, 'restore-vmas.core'), fsync: false });
  rec.stage(`restore, ${n} VMAs (raw, ELF)`, await rs.exit());
  d.restore = { raw, elf };
  rec.row(W, 'restore → raw sparse images, one per VMA, directory store (fsync)', `${fmt.ms(raw.ms)}, ${perVma(raw.ms)}`,
    `gcore writing the process: ${fmt.ms(g.ms)}`, fmt.faster(g.ms, raw.ms), '');
  rec.row(W, 'restore → ELF core, directory store, no fsync (as gcore writes its core)', `${fmt.ms(elf.ms)}, ${perVma(elf.ms)}`,
    `gcore writing the process: ${fmt.ms(g.ms)}`, fmt.faster(g.ms, elf.ms), '');
};
