import { readFileSync } from 'node:fs';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { readThreadStates } from '../procfs/process-tree';
import { leftStopped, registerFrozen, unregisterFrozen, type Thawable } from './thaw-registry';
import { pollUntil } from './wait';

/** Thread states that count as stopped (T: job-control stop, t: tracing stop) or gone (Z, X). */
const STOPPED = new Set(['T', 't', 'Z', 'X']);

/** True when every thread of the process is stopped (or exited). */
export function allThreadsStopped(pid: number): boolean {
  const states = readThreadStates(pid);
  for (const s of states.values()) if (!STOPPED.has(s)) return false;
  return true;
}

/**
 * Someone else's stop of the process is under way: a SIGSTOP still pending for it, or some of its threads
 * stopped already. Such a process is the stopper's to continue, not ours: taken for running, it was sent
 * SIGCONT at thaw (a `kill -STOP` then an immediate snapshot left the process running).
 */
function stopUnderWay(pid: number): boolean {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return false; // gone: the SIGSTOP that follows says so, typed
  }
  const pending = /^ShdPnd:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (pending && (BigInt(`0x${pending}`) & SIGSTOP_BIT) !== 0n) return true;
  for (const s of readThreadStates(pid).values()) if (s === 'T') return true;
  return false;
}

/** SIGSTOP (19) in a /proc/PID/status signal mask (bit n - 1). */
const SIGSTOP_BIT = 1n << 18n;

function firstRunning(pid: number): string {
  for (const [tid, s] of readThreadStates(pid)) if (!STOPPED.has(s)) return `thread ${tid} in state ${s}`;
  return 'no thread';
}

/**
 * SIGSTOP-freezes processes: stop all, then wait until every thread of each is in state T. A process that
 * was already stopped is left alone and not continued at thaw. Side effects, documented in the README:
 * the parent may see a WUNTRACED stop, and a shell's job control notices it.
 */
export class SignalFreeze implements Thawable {
  private readonly stopped: number[] = [];
  readonly alreadyStopped: number[] = [];
  private thawed = false;
  private keepStopped = false;

  private constructor(readonly pids: readonly number[]) {}

  stopInsteadOfThaw(on: boolean): void {
    this.keepStopped = on;
  }

  /** `beforeStop` runs just before each SIGSTOP this sends (the freeze lock's journal). */
  static async freeze(pids: readonly number[], timeoutMs: number, beforeStop: (pid: number) => void = () => undefined): Promise<SignalFreeze> {
    const f = new SignalFreeze(pids);
    registerFrozen(f);
    try {
      for (const pid of pids) {
        if (allThreadsStopped(pid) || stopUnderWay(pid)) {
          f.alreadyStopped.push(pid);
          continue;
        }
        beforeStop(pid);
        process.kill(pid, 'SIGSTOP');
        f.stopped.push(pid);
      }
      const ok = await pollUntil(() => pids.every(allThreadsStopped), timeoutMs);
      if (!ok) {
        const late = pids.find((p) => !allThreadsStopped(p))!;
        throw new PvError(
          ErrorCodes.FREEZE_FAILED,
          `process ${late} did not stop within ${timeoutMs} ms (${firstRunning(late)}; D = uninterruptible I/O)`,
          { retriable: true, details: { pid: late } },
        );
      }
      return f;
    } catch (e) {
      f.thaw();
      throw mapKillError(e, pids);
    }
  }

  thaw(): void {
    if (this.thawed) return;
    this.thawed = true;
    unregisterFrozen(this);
    for (const pid of this.stopped) {
      if (this.keepStopped) {
        leftStopped.add(pid);
        continue;
      }
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // Exited while stopped: nothing to continue.
      }
    }
  }
}

function mapKillError(e: unknown, pids: readonly number[]): unknown {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ESRCH')
    return new PvError(ErrorCodes.NO_SUCH_PROCESS, `no process among ${pids.join(', ')} to stop`, {
      cause: e,
    });
  if (code === 'EPERM') {
    return new PvError(
      ErrorCodes.PERMISSION_DENIED,
      `not allowed to stop ${pids.join(', ')}: needs the same user or CAP_KILL`,
      { cause: e },
    );
  }
  return e;
}
