import { closeSync, existsSync, fstatSync, ftruncateSync, openSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { ERRNO, errnoName, libc } from '../memory/libc';
import { statFields } from '../procfs/proc-files';
import { allThreadsStopped } from './signal-freezer';
import type { Thawable } from './thaw-registry';

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;

/** How a pagevault process is about to stop a target: written to its lock file first (see lockFreeze). */
export type FreezeRecord = { kind: 'signal' } | { kind: 'cgroup'; dir: string };

/** Held freeze locks of some pids; thaw() releases them: synchronous, idempotent, never throws (a Thawable). */
export interface FreezeLock extends Thawable {
  /** Notes in the pid's lock file how this process is about to stop it; call it before the stop. */
  journal(pid: number, how: FreezeRecord): void;
}

/** A target a dead pagevault process left frozen, and what was done about it. */
export interface AbandonedFreeze {
  pid: number;
  /** The pagevault process that froze it and died before thawing it. */
  holder: number;
  how: FreezeRecord['kind'];
  cgroup?: string;
  /** thawed; or why not: the pid is another process now, or it is gone, or it was not stopped any more. */
  outcome: 'thawed' | 'reused' | 'gone' | 'running';
}

/**
 * Where freeze locks live: PV_LOCK_DIR, else /run/lock (every pagevault process of the host must agree,
 * whatever its TMPDIR), else the temp dir.
 */
export function freezeLockDir(): string {
  const dir = process.env['PV_LOCK_DIR'];
  if (dir) return dir;
  return existsSync('/run/lock') ? '/run/lock' : tmpdir();
}

/**
 * One pagevault process at a time freezes a given process, host-wide. Two snapshots of one pid at once
 * (an agent's periodic one and a CLI's) overlapped: the second found the target already stopped and left
 * it to the first, which thawed it while the second was still reading — a fuzzy snapshot marked frozen.
 * A freeze now holds an flock(2) on a file per pid, taken in pid order (no deadlock between groups) and
 * waited for up to `timeoutMs`; the kernel drops it when its holder dies, so a killed agent leaves no
 * lock behind. The file is unlinked before it is unlocked, and a waiter that locked a file no longer at
 * its path tries again. Without libc (no FFI), freezes are not serialized.
 *
 * The file is also a journal: the holder's pid, then a line written just before each stop (`journal`).
 * A holder killed with SIGKILL thaws nothing; the next process to lock the file finds the journal (a
 * released file is gone, so one with content was abandoned) and undoes those stops first, and
 * thawAbandonedFreezes does the same for every abandoned file without a new freeze.
 */
export async function lockFreeze(pids: readonly number[], timeoutMs: number, dir = freezeLockDir()): Promise<FreezeLock> {
  const c = libc();
  if (!c) return { thaw: () => undefined, journal: () => undefined };
  const held: { fd: number; path: string; pid: number }[] = [];
  const release = () => {
    for (const h of held.splice(0).reverse()) {
      try {
        unlinkSync(h.path);
      } catch {
        // already gone
      }
      c.flock(h.fd, LOCK_UN);
      closeSync(h.fd);
    }
  };
  const deadline = Date.now() + timeoutMs;
  try {
    for (const pid of [...new Set(pids)].sort((a, b) => a - b)) {
      const path = join(dir, `pagevault-freeze-${pid}.lock`);
      for (;;) {
        const fd = openSync(path, 'a+', 0o600);
        if (c.flock(fd, LOCK_EX | LOCK_NB) === 0) {
          let current = false;
          try {
            current = statSync(path).ino === fstatSync(fd).ino;
          } catch {
            // unlinked by the holder we waited for
          }
          if (current) {
            // A file with something in it was left by a holder that died holding it (a release unlinks
            // its file first): what that holder froze is thawed before this freeze decides anything.
            if (fstatSync(fd).size > 0) {
              recoverAbandoned(pid, readFileSync(path, 'utf8'));
              ftruncateSync(fd, 0);
            }
            writeSync(fd, `${process.pid}\n`);
            held.push({ fd, path, pid });
            break;
          }
          c.flock(fd, LOCK_UN);
        } else {
          const errno = c.errno();
          if (errno !== ERRNO['EWOULDBLOCK']) {
            closeSync(fd);
            throw new PvError(ErrorCodes.FREEZE_FAILED, `locking ${path} for the freeze of process ${pid} failed (${errnoName(errno)})`, { details: { pid } });
          }
        }
        closeSync(fd);
        if (Date.now() > deadline) {
          throw new PvError(ErrorCodes.FREEZE_FAILED, `process ${pid} has been frozen by another pagevault process for over ${timeoutMs} ms (${path})`, {
            retriable: true,
            details: { pid },
          });
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    }
  } catch (e) {
    release();
    throw e;
  }
  return {
    thaw: release,
    journal: (pid, how) => {
      const h = held.find((x) => x.pid === pid);
      if (!h) return;
      const start = startTime(pid) ?? '-';
      writeSync(h.fd, how.kind === 'signal' ? `signal ${start}\n` : `cgroup ${start} ${how.dir}\n`);
    },
  };
}

/**
 * Thaws what pagevault processes that died while holding freeze locks (SIGKILL, the OOM killer) left
 * frozen, and removes their lock files; a lock still held by a live process is left alone. The agent runs
 * it as it starts; a freeze of a pid whose file was abandoned does the same for that pid (lockFreeze).
 */
export function thawAbandonedFreezes(dir = freezeLockDir()): AbandonedFreeze[] {
  const c = libc();
  if (!c) return [];
  const found: AbandonedFreeze[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return found;
  }
  for (const name of names) {
    const m = /^pagevault-freeze-(\d+)\.lock$/.exec(name);
    if (!m) continue;
    const path = join(dir, name);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      continue; // released meanwhile
    }
    try {
      if (c.flock(fd, LOCK_EX | LOCK_NB) !== 0) continue; // its holder is alive
      let current = false;
      try {
        current = statSync(path).ino === fstatSync(fd).ino;
      } catch {
        // unlinked by a holder that released it meanwhile
      }
      if (!current) continue;
      found.push(...recoverAbandoned(Number(m[1]), readFileSync(path, 'utf8')));
      unlinkSync(path);
    } finally {
      c.flock(fd, LOCK_UN);
      closeSync(fd);
    }
  }
  return found;
}

/**
 * Undoes the stops a dead holder journaled in a lock file: "<holder pid>" then a line per stop, written
 * before it ("signal <starttime>" or "cgroup <starttime> <dir>"). A signal stop is continued only if the
 * pid is still the process that was stopped (same start time) and is stopped; a cgroup is thawed.
 */
function recoverAbandoned(pid: number, journal: string): AbandonedFreeze[] {
  const [first, ...lines] = journal.split('\n');
  const holder = Number(first);
  const out: AbandonedFreeze[] = [];
  for (const line of lines) {
    const r = /^(signal|cgroup) (\S+)(?: (.*))?$/.exec(line);
    if (!r) continue;
    const [, kind, start, cgroup] = r as unknown as [string, 'signal' | 'cgroup', string, string | undefined];
    const now = startTime(pid);
    let outcome: AbandonedFreeze['outcome'];
    if (kind === 'cgroup') {
      try {
        writeFileSync(join(cgroup!, 'cgroup.freeze'), '0');
        outcome = 'thawed';
      } catch {
        outcome = 'gone';
      }
    } else if (now === undefined) {
      outcome = 'gone';
    } else if (now !== start) {
      outcome = 'reused';
    } else if (!allThreadsStopped(pid)) {
      outcome = 'running';
    } else {
      try {
        process.kill(pid, 'SIGCONT');
        outcome = 'thawed';
      } catch {
        outcome = 'gone';
      }
    }
    out.push({ pid, holder, how: kind, ...(cgroup ? { cgroup } : {}), outcome });
  }
  return out;
}

/** The process's start time (clock ticks after boot, /proc/PID/stat field 22): with the pid, who it is. */
function startTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return statFields(stat)[19];
  } catch {
    return undefined;
  }
}
