import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { cgroup2Mount, cgroupPids, hasChildCgroups } from '../procfs/process-tree';
import { leftStopped, registerFrozen, unregisterFrozen, type Thawable } from './thaw-registry';
import { pollUntil } from './wait';

/**
 * Can this cgroup v2 directory be frozen to freeze exactly `targets`? Only when it is not the root, has a
 * cgroup.freeze file, no child cgroups, and every process in it is a target (freezing it freezes them all).
 */
export function cgroupFreezable(dir: string, targets: ReadonlySet<number>): boolean {
  const mount = cgroup2Mount();
  if (!mount || join(dir) === join(mount) || !existsSync(join(dir, 'cgroup.freeze'))) return false;
  if (hasChildCgroups(dir)) return false;
  const procs = cgroupPids(dir);
  return procs.length > 0 && procs.every((p) => targets.has(p)) && !procs.includes(process.pid);
}

/** cgroup.events says the cgroup is frozen. */
export function isFrozen(dir: string): boolean {
  return /^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'));
}

/**
 * Freezes a cgroup v2 through cgroup.freeze and waits for cgroup.events to say "frozen 1". Unlike
 * SIGSTOP it is invisible to the target and its parent. A cgroup that was already frozen is left frozen.
 */
export class CgroupFreeze implements Thawable {
  private thawed = false;
  /** The target processes in the cgroup (freezeProcesses sets them): stopped before the thaw while keepStopped. */
  members: readonly number[] = [];
  private keepStopped = false;

  private constructor(
    readonly dir: string,
    readonly wasFrozen: boolean,
  ) {}

  /** `beforeFreeze` runs just before this freezes the cgroup, if it does (the freeze lock's journal). */
  static async freeze(dir: string, timeoutMs: number, beforeFreeze: () => void = () => undefined): Promise<CgroupFreeze> {
    const was = readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim() === '1';
    const f = new CgroupFreeze(dir, was);
    if (!was) {
      registerFrozen(f);
      beforeFreeze();
      writeFileSync(join(dir, 'cgroup.freeze'), '1');
    }
    const ok = await pollUntil(() => isFrozen(dir), timeoutMs);
    if (!ok) {
      f.thaw();
      throw new PvError(
        ErrorCodes.FREEZE_FAILED,
        `cgroup ${dir} did not report frozen within ${timeoutMs} ms`,
        {
          retriable: true,
          details: { cgroup: dir },
        },
      );
    }
    return f;
  }

  /** While on, thaw() stops the members first: frozen, they take the SIGSTOP before any of their code runs again. */
  stopInsteadOfThaw(on: boolean): void {
    this.keepStopped = on;
  }

  thaw(): void {
    if (this.thawed) return;
    this.thawed = true;
    unregisterFrozen(this);
    for (const pid of this.keepStopped ? this.members : []) {
      try {
        process.kill(pid, 'SIGSTOP');
        leftStopped.add(pid);
      } catch {
        // gone: nothing to keep stopped
      }
    }
    if (!this.wasFrozen) writeFileSync(join(this.dir, 'cgroup.freeze'), '0');
  }
}
