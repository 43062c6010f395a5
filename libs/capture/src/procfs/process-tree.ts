import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { isAbsolute, join, relative } from 'node:path';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { listThreads, parseStatState, procError, statFields } from './proc-files';

/**
 * `parse` of a /proc/PID/task/TID file (`stat`, `status`) of every live thread, by tid. A thread that
 * exits between readdir and read is left out (callers comparing two readings see it as gone).
 */
function perThread<T>(pid: number, file: 'stat' | 'status', parse: (text: string) => T): Map<number, T> {
  const out = new Map<number, T>();
  for (const tid of listThreads(pid)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/${file}`, 'utf8');
    } catch {
      continue;
    }
    out.set(tid, parse(text));
  }
  return out;
}

/** State letter of every live thread of a process (tid → R/S/D/T/t/Z...). */
export function readThreadStates(pid: number): Map<number, string> {
  return perThread(pid, 'stat', parseStatState);
}

/**
 * How many times each thread of a process was switched off its CPU (voluntary + involuntary context
 * switches, /proc/PID/task/TID/status). A stopped thread is never switched: a count that moved, or a
 * thread that came or went, means the process ran in between.
 */
export function readSwitchCounts(pid: number): Map<number, number> {
  return perThread(pid, 'status', (s) => Number(VOLUNTARY.exec(s)?.[1] ?? 0) + Number(INVOLUNTARY.exec(s)?.[1] ?? 0));
}

/**
 * Each thread's user CPU time in clock ticks (/proc/PID/task/TID/stat utime): what moves only when the
 * thread runs its own code. A cgroup-frozen thread is woken by every new signal (it goes back to its
 * freezer trap, switched but without running a line of its code), so its switch count cannot tell.
 */
export function readUserTicks(pid: number): Map<number, number> {
  // Fields after the command name: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime ...
  return perThread(pid, 'stat', (s) => Number(statFields(s)[11]));
}

const VOLUNTARY = /^voluntary_ctxt_switches:\s*(\d+)$/m;
const INVOLUNTARY = /^nonvoluntary_ctxt_switches:\s*(\d+)$/m;

/**
 * The first thread of a process that is ptraced (strace, gdb, a debugger of any kind), and by whom:
 * /proc/PID/task/TID/status TracerPid, per thread (a tracer may seize one thread only).
 */
export function tracedThread(pid: number): { tid: number; tracer: number } | undefined {
  for (const [tid, tracer] of perThread(pid, 'status', (s) => Number(/^TracerPid:\s*(\d+)$/m.exec(s)?.[1] ?? 0))) {
    if (tracer !== 0) return { tid, tracer };
  }
  return undefined;
}

/**
 * Direct children of a process, from every thread's /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN),
 * or, on kernels without it, by scanning every /proc/N/stat for its parent pid.
 */
export function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of listThreads(pid)) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        throw procError(e, pid, `/proc/${pid}/task/${tid}/children`, true);
      if (tid === pid && !existsSync(`/proc/${pid}/task/${tid}/children`)) return childrenByScan(pid);
      continue;
    }
    for (const s of text.split(/\s+/)) if (s) out.push(Number(s));
  }
  return out;
}

function childrenByScan(pid: number): number[] {
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // Fields after the command: state, ppid, ...
      const ppid = Number(statFields(stat)[1]);
      if (ppid === pid) out.push(Number(name));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * A process and all its descendants, root first, each pid once. A descendant that exits while it is
 * being walked is left out with its children (they are the root's to find again, reparented); the
 * root's own exit is an error.
 */
export function processTree(root: number): number[] {
  const seen = new Set<number>([root]);
  const order = [root];
  for (let i = 0; i < order.length; i++) {
    let children: number[];
    try {
      children = childrenOf(order[i]);
    } catch (e) {
      if (i > 0 && isPvError(e) && (e.code === ErrorCodes.PROCESS_EXITED || e.code === ErrorCodes.NO_SUCH_PROCESS)) continue;
      throw e;
    }
    for (const c of children) {
      if (!seen.has(c)) {
        seen.add(c);
        order.push(c);
      }
    }
  }
  return order;
}

/** Where the cgroup v2 hierarchy is mounted, from /proc/self/mountinfo, or undefined. */
export function cgroup2Mount(): string | undefined {
  const text = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0 || !line.slice(sep + 3).startsWith('cgroup2 ')) continue;
    return line.slice(0, sep).split(' ')[4];
  }
  return undefined;
}

/** The cgroup v2 directory of a process, or undefined when there is no v2 hierarchy. */
export function cgroupDirOf(pid: number): string | undefined {
  const mount = cgroup2Mount();
  if (!mount) return undefined;
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch (e) {
    throw procError(e, pid, `/proc/${pid}/cgroup`, false);
  }
  const line = text.split('\n').find((l) => l.startsWith('0::'));
  return line === undefined ? undefined : join(mount, line.slice(3));
}

/** Pids in a cgroup v2 directory (its cgroup.procs). */
export function cgroupPids(dir: string): number[] {
  try {
    return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  } catch (e) {
    throw new PvError(
      ErrorCodes.INVALID_ARGUMENT,
      `cannot list the processes of cgroup ${dir}: ${String(e)}`,
      { cause: e },
    );
  }
}

/** True when the cgroup has child cgroups (freezing it would freeze them too). */
export function hasChildCgroups(dir: string): boolean {
  return readdirSync(dir, { withFileTypes: true }).some((d) => d.isDirectory());
}

/** A cgroup v2 path from a request, absolute or relative to the mount, checked to lie under the mount. */
export function cgroupUnderMount(path: unknown): string {
  if (typeof path !== 'string' || path === '') throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'cgroup must be a cgroup v2 path');
  const mount = cgroup2Mount();
  if (!mount) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'this host has no cgroup v2 hierarchy');
  const dir = isAbsolute(path) ? path : join(mount, path);
  const rel = relative(mount, dir);
  if (rel === '..' || rel.startsWith('../') || isAbsolute(rel)) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `cgroup ${path} is not under the cgroup v2 mount ${mount}`);
  }
  return join(mount, rel);
}
