import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { cgroupDirOf, readSwitchCounts, readUserTicks, tracedThread } from '../procfs/process-tree';
import { statFields } from '../procfs/proc-files';
import { CgroupFreeze, cgroupFreezable, isFrozen } from './cgroup-freezer';
import { lockFreeze } from './freeze-lock';
import { SignalFreeze, allThreadsStopped } from './signal-freezer';
import { registerFrozen, unregisterFrozen, type Thawable } from './thaw-registry';

export type FreezeMethod = 'auto' | 'cgroup' | 'signal';

export interface FreezeOptions {
  /**
   * 'auto' (default): the cgroup v2 freezer for processes that are alone (with other targets only) in
   * their cgroup, SIGSTOP for the rest. 'cgroup' fails when that is impossible; 'signal' always SIGSTOPs.
   */
  method?: FreezeMethod;
  /** How long to wait for every thread to stop. Default 5000 ms. */
  timeoutMs?: number;
  /** How long to wait while another pagevault process has one of the pids frozen (lockFreeze). Default 60 s. */
  lockTimeoutMs?: number;
}

/** A set of processes frozen together; thaw() is synchronous, idempotent and never throws. */
export interface FrozenGroup {
  readonly pids: readonly number[];
  /** How each pid was frozen (for logs and tests). */
  readonly how: ReadonlyMap<number, 'cgroup' | 'signal' | 'already-stopped'>;
  /** When the last target was frozen (performance.now()). */
  readonly frozenAt: number;
  /**
   * Throws PV_FREEZE_FAILED if a target ran since it was frozen: someone else sent it SIGCONT or wrote 0
   * to its cgroup.freeze, even if it was stopped again since (see runMarks).
   * Called before a snapshot's end, so a read that ran on is never committed.
   */
  check(): void;
  thaw(): void;
  /**
   * While on, thaw() — whoever calls it: the caller, or this process dying of a signal — leaves the
   * targets stopped with SIGSTOP rather than running (their pids then in leftStopped). For a live restore
   * once it has begun writing: a target must not run half restored. Off again once it has succeeded.
   */
  stopInsteadOfThaw(on: boolean): void;
}

/**
 * Throws PV_NO_SUCH_PROCESS for a pid that does not exist, PV_INVALID_ARGUMENT for pagevault itself and
 * for a kernel thread (no user memory: it was waited on for the whole freeze timeout, then refused).
 */
export function assertProcess(pid: number): void {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `not a pid: ${pid}`);
  if (pid === process.pid)
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `pid ${pid} is this pagevault process itself and cannot be frozen`);
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    throw new PvError(ErrorCodes.NO_SUCH_PROCESS, `no process with pid ${pid}`, { details: { pid } });
  }
  // Fields after the command name: state ppid pgrp session tty_nr tpgid flags ...
  const flags = Number(statFields(stat)[6]);
  if (flags & PF_KTHREAD) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `pid ${pid} is a kernel thread: it has no user memory to snapshot`, { details: { pid } });
  }
  // /proc/<tid> of any thread exists too, and a SIGSTOP sent to a thread stops its whole process: a
  // thread id is refused, naming its process (one of ours would stop this very process).
  const tgid = threadGroupOf(pid);
  if (tgid !== undefined && tgid !== pid) {
    const whose = tgid === process.pid ? 'this process (pagevault itself)' : `process ${tgid}`;
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `pid ${pid} is a thread of ${whose}, not a process: name the process`, { details: { pid, tgid } });
  }
}

/**
 * Every pid of a request checked before any is touched: each listed once (PV_INVALID_ARGUMENT), each a
 * process pagevault may read (assertProcess) and, when it is to be frozen, one no debugger traces
 * (PV_FREEZE_FAILED). What a freeze, the agent and the CLI check up front (a pre-copy would otherwise
 * run all its live rounds before its frozen one refused it). `alone`: each pid is to be frozen by itself
 * (not one group), so pid 1 — our pid namespace's init, which SIGSTOP does not stop — is refused unless
 * it is alone in a freezable cgroup; in a group (a tree, a cgroup) the freeze judges it with the others.
 */
export function checkTargets(pids: readonly number[], o: { freezing: boolean; alone?: boolean }): void {
  const twice = pids.find((pid, i) => pids.indexOf(pid) !== i);
  if (twice !== undefined) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `pid ${twice} is listed twice`, { details: { pid: twice } });
  for (const pid of pids) {
    assertProcess(pid);
    if (!o.freezing) continue;
    refuseTraced(pid);
    if (o.alone && pid === 1) freezerOf(pid, new Set([pid]), 'auto'); // the one pid 'auto' can fail: judged as freezeProcesses([1]) will
  }
}

/** The Tgid line of /proc/PID/status: the process a task belongs to (undefined if it just went away). */
function threadGroupOf(pid: number): number | undefined {
  try {
    const m = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A traced process's stops are its tracer's: its threads sit in tracing stop ('t') at every syscall
 * strace reports and run on when it says so, and a SIGSTOP is delivered (or held) as the tracer decides.
 * Taken for stopped, it was read while running and labelled frozen. Refused, as CRIU refuses it.
 */
function refuseTraced(pid: number): void {
  const t = tracedThread(pid);
  if (!t) return;
  const thread = t.tid === pid ? '' : ` (its thread ${t.tid})`;
  throw new PvError(
    ErrorCodes.FREEZE_FAILED,
    `process ${pid}${thread} is being traced by process ${t.tracer}${commOf(t.tracer)}: its stops are the tracer's, so it cannot be frozen; detach the tracer, or snapshot it --live (fuzzy)`,
    { details: { pid, tid: t.tid, tracer: t.tracer } },
  );
}

function commOf(pid: number): string {
  try {
    return ` (${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()})`;
  } catch {
    return '';
  }
}

function continued(pid: number, why: string): PvError {
  return new PvError(
    ErrorCodes.FREEZE_FAILED,
    `process ${pid} ran during its frozen read (${why}): the snapshot would mix moments, and is not committed; take it again, or --live`,
    { retriable: true, details: { pid } },
  );
}

interface RunMarks {
  before: ReadonlyMap<number, number>;
  read: (pid: number) => Map<number, number>;
  unit: string;
}

/**
 * Per thread, a count that moves only if the thread ran. A SIGSTOPped thread is never switched: its
 * context switches (exact) — read until two readings 1 ms apart agree, since a thread seen in state T
 * may still be on its way off the CPU. A cgroup-frozen thread is switched by every new signal without
 * running its code: its user CPU time (clock ticks, so a thaw shorter than a tick of running can pass).
 */
async function runMarks(how: ReadonlyMap<number, 'cgroup' | 'signal' | 'already-stopped'>): Promise<Map<number, RunMarks>> {
  const out = new Map<number, RunMarks>();
  const stopped: number[] = [];
  for (const [pid, h] of how) {
    if (h === 'cgroup') out.set(pid, { before: readUserTicks(pid), read: readUserTicks, unit: 'ticks of user time' });
    else stopped.push(pid);
  }
  let before = stopped.map(readSwitchCounts);
  for (let i = 0; i < 5 && stopped.length > 0; i++) {
    await sleep(1);
    const now = stopped.map(readSwitchCounts);
    const settled = now.every((n, k) => ranSince(before[k]!, n) === undefined);
    before = now;
    if (settled) break;
  }
  stopped.forEach((pid, k) => out.set(pid, { before: before[k]!, read: readSwitchCounts, unit: 'context switches' }));
  return out;
}

/**
 * How a process's threads show that it ran between two readings of a per-thread count (runMarks): a
 * thread's count moved, or a thread started or is gone. Undefined when none did.
 */
export function ranSince(before: ReadonlyMap<number, number>, now: ReadonlyMap<number, number>, unit = 'context switches'): string | undefined {
  for (const [tid, n] of now) {
    const was = before.get(tid);
    if (was === undefined) return `thread ${tid} started`;
    if (n !== was) return `thread ${tid} ran (${n - was} ${unit})`;
  }
  for (const tid of before.keys()) if (!now.has(tid)) return `thread ${tid} exited`;
  return undefined;
}

/** The task flag of kernel threads (include/linux/sched.h), in /proc/PID/stat's ninth field. */
const PF_KTHREAD = 0x00200000;

/**
 * How `pid` is frozen among `targets`: the cgroup directory to freeze, or undefined for SIGSTOP. Throws
 * PV_FREEZE_FAILED when neither can: 'cgroup' asked for and impossible, or pid 1 — our pid namespace's
 * init, which drops a SIGSTOP sent from inside the namespace — not alone in a freezable cgroup.
 */
function freezerOf(pid: number, targets: ReadonlySet<number>, method: FreezeMethod): string | undefined {
  const dir = method === 'signal' ? undefined : cgroupDirOf(pid);
  if (dir !== undefined && cgroupFreezable(dir, targets)) return dir;
  if (method === 'cgroup') {
    throw new PvError(ErrorCodes.FREEZE_FAILED, `process ${pid} is not alone in a freezable cgroup v2 (${dir ?? 'no cgroup v2'})`, { details: { pid, cgroup: dir } });
  }
  if (pid === 1) {
    throw new PvError(
      ErrorCodes.FREEZE_FAILED,
      `process 1 is the init of this pid namespace, which SIGSTOP does not stop: freeze it with the cgroup v2 freezer (alone in its cgroup) or snapshot it --live`,
      { details: { pid, cgroup: dir } },
    );
  }
  return undefined;
}

/**
 * Freezes every pid before returning, so a group is read as of one instant. On failure whatever was
 * frozen is thawed before the error propagates.
 */
export async function freezeProcesses(
  pids: readonly number[],
  opts: FreezeOptions = {},
): Promise<FrozenGroup> {
  const method = opts.method ?? 'auto';
  const timeoutMs = opts.timeoutMs ?? 5000;
  checkTargets(pids, { freezing: true });
  const targets = new Set(pids);
  const byCgroup = new Map<string, number[]>();
  const bySignal: number[] = [];
  for (const pid of pids) {
    const dir = freezerOf(pid, targets, method);
    if (dir !== undefined) byCgroup.set(dir, [...(byCgroup.get(dir) ?? []), pid]);
    else bySignal.push(pid);
  }
  const lock = await lockFreeze(pids, opts.lockTimeoutMs ?? 60_000);
  // A process dying of a signal thaws what it froze, last registered first: the lock, registered before
  // the parts (each registers as it freezes, before waiting for its threads), goes once they are thawed.
  registerFrozen(lock);
  const parts: Thawable[] = [];
  const how = new Map<number, 'cgroup' | 'signal' | 'already-stopped'>();
  const marks = new Map<number, RunMarks>();
  try {
    for (const [dir, members] of byCgroup) {
      const cg = await CgroupFreeze.freeze(dir, timeoutMs, () => members.forEach((p) => lock.journal(p, { kind: 'cgroup', dir })));
      cg.members = members;
      parts.push(cg);
      for (const p of members) how.set(p, 'cgroup');
    }
    if (bySignal.length > 0) {
      const s = await SignalFreeze.freeze(bySignal, timeoutMs, (p) => lock.journal(p, { kind: 'signal' }));
      parts.push(s);
      for (const p of bySignal) how.set(p, s.alreadyStopped.includes(p) ? 'already-stopped' : 'signal');
    }
    // What shows that a target ran, taken once every thread is seen stopped (see runMarks).
    for (const [pid, m] of await runMarks(how)) marks.set(pid, m);
  } catch (e) {
    for (const p of parts) p.thaw();
    lock.thaw();
    unregisterFrozen(lock);
    throw e;
  }
  return {
    pids: [...pids],
    how,
    frozenAt: performance.now(),
    check: () => {
      for (const [pid, h] of how) if (h !== 'cgroup' && !allThreadsStopped(pid)) throw continued(pid, 'SIGCONT from another process');
      for (const [dir, members] of byCgroup) if (!isFrozen(dir)) throw continued(members[0]!, `its cgroup ${dir} was thawed by another writer of cgroup.freeze`);
      for (const [pid, m] of marks) {
        const ran = ranSince(m.before, m.read(pid), m.unit);
        if (ran) throw continued(pid, `${ran}: continued and stopped again by another process`);
      }
    },
    stopInsteadOfThaw: (on: boolean) => {
      for (const p of parts) p.stopInsteadOfThaw?.(on);
    },
    thaw: () => {
      for (const p of parts) {
        try {
          p.thaw();
        } catch {
          // Thaw every part even if one target is gone.
        }
      }
      lock.thaw();
      unregisterFrozen(lock);
    },
  };
}
