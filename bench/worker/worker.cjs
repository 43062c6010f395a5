'use strict';
// One benchmark stage in a child process of its own, so that its peak RSS and CPU time are its own.
//   fork(worker.cjs, [role, JSON args]) — then IPC: {id, op, arg} → {id, ok, result, ms, cpuMs} | {id, error}
// Roles live in ./roles/<role>.cjs and export async (args, emit) => ({ op(arg) {...}, close() {...} }).
// The op "exit" closes the role, answers with process.resourceUsage() and exits (flushing --cpu-prof).
const { performance } = require('node:perf_hooks');

const [role, argsJson] = process.argv.slice(2);
const emit = (event, data) => process.send({ event, data });
let handlers;

function usage() {
  const u = process.resourceUsage();
  return { maxRssKiB: u.maxRSS, userCpuMs: u.userCPUTime / 1000, systemCpuMs: u.systemCPUTime / 1000 };
}

function errorOf(e) {
  return { message: e instanceof Error ? e.message : String(e), code: e && e.code, stack: e && e.stack };
}

// The bench went away (killed, crashed): nothing is left to report to, and a compactor must not linger.
process.on('disconnect', () => process.exit(1));

process.on('message', async (m) => {
  if (m.op === 'exit') {
    try {
      await handlers?.close?.();
    } catch (e) {
      process.stderr.write(`bench worker ${role}: close failed: ${errorOf(e).message}\n`);
    }
    // Exiting while a helper thread still loads koffi aborts the process (see @pagevault/hashing).
    await require('@pagevault/hashing').settleHelperThreads();
    process.send({ id: m.id, ok: true, result: usage() }, () => process.exit(0));
    return;
  }
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  try {
    const fn = handlers[m.op];
    if (typeof fn !== 'function') throw new Error(`role ${role} has no op ${m.op}`);
    const result = await fn(m.arg ?? {});
    const c = process.cpuUsage(c0);
    process.send({ id: m.id, ok: true, result, ms: performance.now() - t0, cpuMs: (c.user + c.system) / 1000 });
  } catch (e) {
    process.send({ id: m.id, ok: false, error: errorOf(e) });
  }
});

(async () => {
  handlers = await require(`./roles/${role}.cjs`)(JSON.parse(argsJson ?? '{}'), emit);
  process.send({ ready: true });
})().catch((e) => {
  process.send({ fatal: errorOf(e) }, () => process.exit(1));
});
