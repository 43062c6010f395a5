import { ErrorCodes, PvError } from '@pagevault/errors';
import { readThreadStates } from '../procfs/process-tree';
import { registerFrozen, unregisterFrozen, type Thawable } from './thaw-registry';
import { pollUntil } from './wait';

/** Thread states that count as stopped (T: job-control stop, t: tracing stop) or gone (Z, X). */
const STOPPED = new Set(['T', 't', 'Z', 'X']);

/** True when every thread of the process is stopped (or exited). */
export function allThreadsStopped(pid: number): boolean {
  const states = readThreadStates(pid);
  for (const s of states.values()) if (!STOPPED.has(s)) return false;
  return true;
}

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

  private constructor(readonly pids: readonly number[]) {}

  static async freeze(pids: readonly number[], timeoutMs: number): Promise<SignalFreeze> {
    const f = new SignalFreeze(pids);
    registerFrozen(f);
    try {
      for (const pid of pids) {
        if (allThreadsStopped(pid)) {
          f.alreadyStopped.push(pid);
          continue;
        }
        process.kill(pid, 'SIGSTOP');
        f.stopped.push(pid);
      }
      const ok = await pollUntil(() => f.stopped.every(allThreadsStopped), timeoutMs);
      if (!ok) {
        const late = f.stopped.find((p) => !allThreadsStopped(p))!;
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
