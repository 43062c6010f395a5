import type { Command } from 'commander';
import { captureSnapshot, cgroupUnderMount, checkTargets, thawAbandonedFreezes, type CaptureStats, type GroupTargets } from '@pagevault/capture';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { Consistency, idFromHex, newSnapshotId, idToHex } from '@pagevault/format';
import { addTags, checkTag, resolveSnapshot, type Manifest } from '@pagevault/repo';
import { shipSnapshot } from '@pagevault/shipper';
import { KEPT_TABLES, leftOut, openContext, type Context, type GlobalOptions } from '../context';
import { bytes, printJson, printTable } from '../output';
import { parentHashTable } from '../parent-hashes';
import { Pipeline } from '../pipeline';
import { takeGroup, takePreCopy } from './capture-modes';

export interface SnapshotRequest {
  pid: number;
  live?: boolean;
  parent?: string;
}

export interface SnapshotOutcome {
  manifest: Manifest;
  capture: CaptureStats;
  frames: number;
  frameBytes: number;
  ms: number;
}

/** One snapshot through the pipeline of this context: capture → frames → log → compaction → manifest. */
export async function takeSnapshot(ctx: Context, pipe: Pipeline, req: SnapshotRequest): Promise<SnapshotOutcome> {
  const t0 = performance.now();
  const t = await ctx.tenant();
  // `latest` (narrowed or not) means this process's latest: with several pids, each one's own.
  const parentManifest = req.parent ? await resolveSnapshot(t, req.parent, isLatest(req.parent) ? { pid: req.pid } : {}, leftOut) : undefined;
  if (parentManifest && parentManifest.pid !== req.pid) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `--parent ${req.parent} is snapshot ${parentManifest.snapshotId} of pid ${parentManifest.pid}, not of pid ${req.pid}: an incremental's parent is an earlier snapshot of the same process (pages are deduplicated across processes without one)`, { details: { parent: parentManifest.snapshotId, parentPid: parentManifest.pid, pid: req.pid } });
  }
  const kept = ctx.keptHashes;
  const parent = parentManifest && {
    id: idFromHex(parentManifest.snapshotId),
    hashes: kept?.get(parentManifest.snapshotId) ?? (await parentHashTable(t, parentManifest)),
  };
  const id = newSnapshotId();
  const committed = pipe.committed(idToHex(id));
  const producer = pipe.log.producer();
  try {
    const shipped = await shipSnapshot({
      producer, maxFrameBytes: pipe.log.maxFrameBytes, snapshotId: id,
      capture: (writer, drain) => captureSnapshot({
        pid: req.pid, writer, drain, tenant: ctx.tenantName, host: ctx.host,
        consistency: req.live ? Consistency.Live : Consistency.Frozen, ...(parent ? { parent } : {}), ...(kept ? { wantHashes: true } : {}),
      }),
    });
    pipe.shipped([idToHex(id)]);
    const manifest = await committed;
    if (kept && shipped.stats.hashes) {
      kept.set(manifest.snapshotId, shipped.stats.hashes);
      for (const id of kept.keys()) if (kept.size > KEPT_TABLES) kept.delete(id);
    }
    return { manifest, capture: shipped.stats.stats, frames: shipped.frames, frameBytes: shipped.bytes, ms: performance.now() - t0 };
  } finally {
    committed.catch(() => undefined);
    await producer.close().catch(() => undefined);
  }
}

export function registerSnapshotCommand(program: Command, globals: () => GlobalOptions): void {
  program.command('snapshot [pids...]').description('snapshot the memory of running processes')
    .option('--live', 'read without freezing (fuzzy, marked live)')
    .option('--parent <snapshot>', 'incremental against this snapshot (id, prefix or "latest")')
    .option('--group', 'freeze all the given pids together: one consistent group')
    .option('--tree <pid>', 'the process and all its descendants, as one consistent group')
    .option('--cgroup <path>', 'every process of a cgroup (v2 path), as one consistent group')
    .option('--pre-copy [budgetPages]', 'live rounds until the changed set fits the budget (default 2048 pages), then a frozen round')
    .option('--tag <tag>', 'tag the committed snapshots (repeatable); "latest:tag=<tag>" finds them', (v: string, prev: string[] = []) => [...prev, checkTag(v)])
    .action(async (pids: string[], o: SnapshotOptions) => {
      const plan = snapshotPlan(pids, o);
      thawAbandoned();
      // Every named process is there before the first is taken: a typo fails the command, not its second half.
      const named = plan.kind !== 'group' ? plan.pids : 'tree' in plan.targets ? [plan.targets.tree] : [];
      try {
        checkTargets(named, { freezing: o.live !== true, alone: plan.kind !== 'group' });
      } catch (e) {
        throw isPvError(e) ? new PvError(e.code, `${e.message} (nothing was snapshotted)`, { cause: e, details: e.details }) : e;
      }
      const ctx = openContext(globals());
      const pipe = new Pipeline(ctx);
      await pipe.start();
      const rows: { manifest: Manifest; note?: string }[] = [];
      // Each snapshot is tagged once committed: a later one failing leaves it labelled, and named.
      const commit = async (r: { manifest: Manifest; note?: string }) => {
        if (o.tag?.length) await addTags(await ctx.tenant(), r.manifest.snapshotId, o.tag);
        rows.push(r);
      };
      try {
        if (plan.kind === 'group') {
          for (const m of await takeGroup(ctx, pipe, plan.targets)) await commit({ manifest: m });
        } else {
          for (const pid of plan.pids) {
            if (plan.kind === 'pre-copy') {
              const r = await takePreCopy(ctx, pipe, pid, plan.budget);
              for (const [i, m] of r.manifests.entries()) {
                await commit({ manifest: m, note: i === r.manifests.length - 1 ? `final, frozen ${r.downtimeMs.toFixed(0)} ms (${r.stoppedBecause})` : `round ${i + 1}` });
              }
            } else {
              const r = await takeSnapshot(ctx, pipe, { pid, ...(plan.live ? { live: true } : {}), ...(plan.parent ? { parent: plan.parent } : {}) });
              await commit({ manifest: r.manifest, note: `frozen ${r.capture.freezeMs.toFixed(0)} ms, ${r.ms.toFixed(0)} ms in all` });
            }
          }
        }
      } catch (e) {
        throw rows.length && isPvError(e) ? committedBefore(e, rows) : e;
      } finally {
        await pipe.stop();
      }
      report(ctx, rows, o.tag ?? []);
    });
}

export interface SnapshotOptions {
  live?: boolean;
  parent?: string;
  group?: boolean;
  tree?: string;
  cgroup?: string;
  preCopy?: string | boolean;
  tag?: string[];
}

export type SnapshotPlan =
  | { kind: 'each'; pids: number[]; live: boolean; parent?: string }
  | { kind: 'pre-copy'; pids: number[]; budget: number }
  | { kind: 'group'; targets: GroupTargets };

/**
 * What `snapshot` was asked to do, or PV_INVALID_ARGUMENT for a request it cannot honour as given:
 * an option the chosen mode would ignore is refused, never dropped.
 */
export function snapshotPlan(args: string[], o: SnapshotOptions): SnapshotPlan {
  const bad = (why: string) => new PvError(ErrorCodes.INVALID_ARGUMENT, why);
  const pids = args.map((p) => pidOf(p, 'not a pid'));
  const twice = pids.find((pid, i) => pids.indexOf(pid) !== i);
  if (twice !== undefined) throw bad(`pid ${twice} is listed twice`);
  const modes = [o.group && '--group', o.tree !== undefined && '--tree', o.cgroup !== undefined && '--cgroup', o.preCopy !== undefined && '--pre-copy', o.live && '--live'].filter(Boolean);
  if (modes.length > 1) throw bad(`${modes.join(' and ')} cannot be combined: choose one mode`);
  const group = o.group || o.tree !== undefined || o.cgroup !== undefined;
  if (group && o.parent !== undefined) throw bad('--parent is not supported for a group from the CLI (the agent takes a group incremental: POST /snapshots {..., parent})');
  if (o.preCopy !== undefined && o.parent !== undefined) throw bad('--pre-copy makes its own chain of rounds: it takes no --parent');
  if ((o.tree !== undefined || o.cgroup !== undefined) && pids.length) throw bad(`${o.tree !== undefined ? '--tree' : '--cgroup'} names the processes itself: drop the pids ${pids.join(' ')}`);
  if (o.tree !== undefined) return { kind: 'group', targets: { tree: pidOf(o.tree, '--tree needs a pid, got') } };
  if (o.cgroup !== undefined) {
    if (o.cgroup.trim() === '') throw bad('--cgroup needs a cgroup v2 path');
    // As the agent takes it: absolute, or relative to the cgroup v2 mount, and under it.
    return { kind: 'group', targets: { cgroup: cgroupUnderMount(o.cgroup) } };
  }
  if (!pids.length) throw bad('name pids, --tree <pid> or --cgroup <path>');
  if (o.parent !== undefined && pids.length > 1 && !isLatest(o.parent)) {
    throw bad(`--parent ${o.parent} is one process's snapshot, and ${pids.length} pids are named: --parent latest takes each one's latest`);
  }
  if (o.group) return { kind: 'group', targets: { pids } };
  if (o.preCopy !== undefined) {
    const text = typeof o.preCopy === 'string' ? o.preCopy : '2048';
    if (!/^\d+$/.test(text) || Number(text) < 1) throw bad(`--pre-copy budget must be a number of pages >= 1, got ${text}`);
    return { kind: 'pre-copy', pids, budget: Number(text) };
  }
  return { kind: 'each', pids, live: o.live === true, ...(o.parent !== undefined ? { parent: o.parent } : {}) };
}

/** A `latest` reference, narrowed (latest:tag=nightly) or not. */
function isLatest(ref: string): boolean {
  return ref === 'latest' || ref.startsWith('latest:');
}

/** A pid argument: decimal digits naming a positive pid, else PV_INVALID_ARGUMENT `${what}: ${text}`. */
export function pidOf(text: string, what: string): number {
  const pid = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(pid) || pid <= 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `${what}: ${text}`);
  return pid;
}

/** The failure, naming the snapshots committed (and tagged) before it, so none is left unaccounted for. */
function committedBefore(e: PvError, rows: { manifest: Manifest }[]): PvError {
  const done = rows.map((r) => `${r.manifest.snapshotId} (pid ${r.manifest.pid})`).join(', ');
  return new PvError(e.code, `${e.message} — committed before this failure: ${done}`, { cause: e, retriable: e.retriable, details: { ...e.details, committed: rows.map((r) => r.manifest.snapshotId) } });
}

function report(ctx: Context, rows: { manifest: Manifest; note?: string }[], tags: string[]): void {
  if (ctx.json) {
    printJson(rows.map((r) => ({ snapshotId: r.manifest.snapshotId, pid: r.manifest.pid, groupId: r.manifest.groupId, counts: r.manifest.counts, tags, note: r.note })));
    return;
  }
  printTable(rows.map(({ manifest: m, note }) => ({
    id: m.snapshotId, pid: m.pid, data: m.counts.dataPages, zero: m.counts.zeroPages, parent: m.counts.parentPages,
    new: m.counts.newPages, stored: bytes(m.counts.newBytes), note: note ?? '',
  })));
}

/**
 * What a pagevault process killed outright (SIGKILL, the OOM killer) left frozen is thawed before the
 * next snapshot, as the agent and the restorer do when they start: a --live snapshot, which freezes
 * nothing, would otherwise read a process left stopped and leave it so.
 */
export function thawAbandoned(): void {
  for (const a of thawAbandonedFreezes()) {
    process.stderr.write(`pagevault: warning: pagevault process ${a.holder} died with process ${a.pid} frozen: ${a.outcome}\n`);
  }
}
