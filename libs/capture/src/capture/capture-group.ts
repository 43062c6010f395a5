import { performance } from 'node:perf_hooks';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { Consistency, type SnapshotWriter } from '@pagevault/format';
import { freezeProcesses, type FrozenGroup } from '../freeze/freeze-group';
import { cgroupPids, processTree, readThreadStates } from '../procfs/process-tree';
import { captureProcess } from './capture-process';
import { abortWriter } from './capture-snapshot';
import { checkOptions, type CaptureOptions, type CaptureParent, type CaptureResult } from './options';

/** Which processes form the group: exactly one of these. */
export type GroupTargets = { pids: number[] } | { tree: number } | { cgroup: string };

export interface GroupSnapshot {
  writer: SnapshotWriter;
  drain?: () => Promise<void>;
  parent?: CaptureParent;
}

export interface CaptureGroupOptions extends Omit<
  CaptureOptions,
  'pid' | 'writer' | 'drain' | 'parent' | 'consistency' | 'groupId'
> {
  targets: GroupTargets;
  /** Shared by every snapshot of the group (snapshot-begin groupId). */
  groupId: Uint8Array;
  /** Called once per pid after the group is frozen, before anything is read. */
  snapshotFor: (pid: number) => GroupSnapshot;
}

export interface GroupMemberResult {
  pid: number;
  result: CaptureResult;
}

/**
 * Captures several processes as of one instant: all are frozen before any is read and thawed after all
 * are read, one snapshot each with a common groupId; each member's stats.freezeMs is the group's freeze. If one fails, its stream and those not yet written
 * are aborted (the group is not consistent any more) and the error rethrown; finished ones stay valid.
 */
export async function captureGroup(opts: CaptureGroupOptions): Promise<GroupMemberResult[]> {
  const frozen = await freezeGroup(opts);
  const out: GroupMemberResult[] = [];
  const members = frozen.pids.map((pid) => ({ pid, snap: opts.snapshotFor(pid) }));
  let i = 0;
  try {
    for (; i < members.length; i++) {
      const { pid, snap } = members[i];
      const o: CaptureOptions = {
        ...opts,
        pid,
        writer: snap.writer,
        drain: snap.drain,
        parent: snap.parent,
        groupId: opts.groupId,
      };
      checkOptions(o);
      out.push({ pid, result: await captureProcess(o, Consistency.Frozen, () => frozen.check()) });
    }
    return out;
  } catch (e) {
    for (; i < members.length; i++) abortWriter(members[i].snap.writer, e);
    throw e;
  } finally {
    frozen.thaw();
    // One freeze for the whole group: each member reports it as its downtime.
    const freezeMs = performance.now() - frozen.frozenAt;
    for (const m of out) m.result.stats.freezeMs = freezeMs;
  }
}

/**
 * Freezes the targets. For a tree, the root first (a frozen process forks no more), then its
 * descendants, walking the tree again after each freeze until a walk finds nothing new. A descendant
 * that exits between a walk and its freeze is walked past (a forking server's short-lived children).
 */
async function freezeGroup(opts: CaptureGroupOptions): Promise<FrozenGroup> {
  const t = opts.targets;
  if ('pids' in t) return freezeProcesses(t.pids, opts.freeze);
  if ('cgroup' in t) return freezeProcesses(cgroupPids(t.cgroup), opts.freeze);
  const parts: FrozenGroup[] = [];
  const all: number[] = [];
  const thawAll = (): void => parts.forEach((p) => p.thaw());
  try {
    for (let round = 0; round < 16; round++) {
      // Children that are zombies (exited, not yet reaped) have no memory: a forking server always has some.
      const fresh = round === 0 ? [t.tree] : processTree(t.tree).filter((p) => !all.includes(p) && living(p));
      if (fresh.length === 0) {
        // A child that became a zombie meanwhile was "already stopped": it has no memory to read.
        const members = all.filter((p) => p === t.tree || living(p));
        return {
          pids: members,
          how: new Map(parts.flatMap((p) => [...p.how]).filter(([p]) => members.includes(p))),
          frozenAt: parts.at(-1)!.frozenAt,
          check: () => parts.forEach((p) => p.check()),
          stopInsteadOfThaw: (on) => parts.forEach((p) => p.stopInsteadOfThaw(on)),
          thaw: thawAll,
        };
      }
      try {
        parts.push(await freezeProcesses(fresh, opts.freeze));
      } catch (e) {
        // A child that exited between the walk and its freeze: walk again without it (nothing of this round is frozen).
        if (isPvError(e) && (e.code === ErrorCodes.NO_SUCH_PROCESS || e.code === ErrorCodes.PROCESS_EXITED) && e.details['pid'] !== t.tree) continue;
        throw e;
      }
      all.push(...fresh);
    }
    throw new PvError(ErrorCodes.FREEZE_FAILED, `process tree of ${t.tree} kept growing while being frozen`, {
      retriable: true,
    });
  } catch (e) {
    thawAll();
    throw e;
  }
}

/** Not exited: neither a zombie nor gone. */
function living(pid: number): boolean {
  const state = readThreadStates(pid).get(pid);
  return state !== undefined && state !== 'Z' && state !== 'X';
}
