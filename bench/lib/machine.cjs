'use strict';
// What the figures were measured on, and how busy it was: results on a shared machine mean little
// without the load average next to them.
const os = require('node:os');
const { readFileSync } = require('node:fs');
const { quiet } = require('./proc.cjs');

function describeMachine() {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const mhz = /^cpu MHz\s*:\s*(.*)$/m.exec(cpuinfo)?.[1];
  return {
    nproc: Number(quiet('nproc', [])) || os.availableParallelism(),
    memTotalGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    kernel: `${os.type()} ${os.release()}`,
    cpuModel: model + (mhz ? ` @ ${Math.round(Number(mhz))} MHz` : ''),
    node: process.version,
    softDirty: /CONFIG_MEM_SOFT_DIRTY=y/.test(quiet('sh', ['-c', 'zcat /proc/config.gz 2>/dev/null || cat /boot/config-$(uname -r) 2>/dev/null'])),
  };
}

function loadAvg() {
  const [one, five, fifteen] = os.loadavg().map((x) => +x.toFixed(2));
  return { one, five, fifteen };
}

module.exports = { describeMachine, loadAvg };
