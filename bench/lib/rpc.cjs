'use strict';
// The orchestrator's side of bench/worker/worker.cjs: start a stage in its own process, call its ops,
// receive its events, and collect its peak RSS and CPU time when it exits.
const { fork } = require('node:child_process');
const { join } = require('node:path');

const WORKER = join(__dirname, '..', 'worker', 'worker.cjs');
/** Every worker still running: a phase that fails half-way leaves its workers to killAll(). */
const live = new Set();

async function startWorker(role, args = {}, { execArgv = [], onEvent = () => undefined } = {}) {
  const child = fork(WORKER, [role, JSON.stringify(args)], {
    execArgv: ['--no-warnings', ...execArgv],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  live.add(child);
  child.once('exit', () => live.delete(child));
  const pending = new Map();
  let next = 1;
  let dead;
  const failAll = (e) => {
    dead = e;
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  };
  const ready = new Promise((resolve, reject) => {
    child.on('message', (m) => {
      if (m.ready) return resolve();
      if (m.fatal) return reject(new Error(`bench worker ${role} failed to start: ${m.fatal.message}`));
      if (m.event) return onEvent(m.event, m.data);
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (m.ok) p.resolve({ ...(m.result ?? {}), workerMs: m.ms, cpuMs: m.cpuMs });
      else p.reject(Object.assign(new Error(`${role}.${p.op}: ${m.error.message}`), { code: m.error.code, remoteStack: m.error.stack }));
    });
    child.once('exit', (code, sig) => {
      const e = new Error(`bench worker ${role} exited (${sig ?? code})`);
      reject(e);
      failAll(e);
    });
  });
  await ready;
  const call = (op, arg) => {
    if (dead) return Promise.reject(dead);
    const id = next++;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject, op });
      child.send({ id, op, arg });
    });
  };
  return {
    role,
    pid: child.pid,
    call,
    /** Closes the role and resolves with the process's { maxRssKiB, userCpuMs, systemCpuMs }. */
    exit: async () => {
      if (dead) return undefined;
      const r = await call('exit');
      await new Promise((res) => (child.exitCode !== null ? res() : child.once('exit', res)));
      return r;
    },
    kill: () => child.exitCode === null && child.kill('SIGKILL'),
  };
}

/** Kills the workers a failed phase left behind (their IPC channels would keep the bench alive). */
function killAll() {
  for (const c of live) c.kill('SIGKILL');
}

module.exports = { startWorker, killAll };
