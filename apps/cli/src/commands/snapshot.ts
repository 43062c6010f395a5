import type { Command } from 'commander';
import { captureSnapshot, type CaptureStats } from '@pagevault/capture';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { Consistency, idFromHex, newSnapshotId, idToHex } from '@pagevault/format';
import { addTags, checkTag, resolveSnapshot, type Manifest } from '@pagevault/repo';
import { shipSnapshot } from '@pagevault/shipper';
import { KEPT_TABLES, openContext, type Context, type GlobalOptions } from '../context';
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
  const parentManifest = req.parent ? await resolveSnapshot(t, req.parent) : undefined;
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
    .action(async (pids: string[], o: { live?: boolean; parent?: string; group?: boolean; tree?: string; cgroup?: string; preCopy?: string | boolean; tag?: string[] }) => {
      const ctx = openContext(globals());
      const tagged = async (rows: { manifest: Manifest; note?: string }[]) => {
        const t = await ctx.tenant();
        for (const r of rows) if (o.tag?.length) await addTags(t, r.manifest.snapshotId, o.tag);
        report(ctx, rows, o.tag ?? []);
      };
      const nums = pids.map((p) => {
        const pid = Number(p);
        if (!Number.isInteger(pid) || pid <= 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `not a pid: ${p}`);
        return pid;
      });
      const twice = nums.find((pid, i) => nums.indexOf(pid) !== i);
      if (twice !== undefined) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `pid ${twice} is listed twice`);
      if (!nums.length && !o.tree && !o.cgroup) throw new PvError(ErrorCodes.INVALID_ARGUMENT, 'name pids, --tree <pid> or --cgroup <path>');
      const pipe = new Pipeline(ctx);
      await pipe.start();
      try {
        if (o.tree || o.cgroup || o.group) {
          const targets = o.tree ? { tree: Number(o.tree) } : o.cgroup ? { cgroup: o.cgroup } : { pids: nums };
          const ms = await takeGroup(ctx, pipe, targets);
          return await tagged(ms.map((m) => ({ manifest: m })));
        }
        if (o.preCopy !== undefined) {
          const budget = typeof o.preCopy === 'string' ? Number(o.preCopy) : 2048;
          const rows = [];
          for (const pid of nums) {
            const r = await takePreCopy(ctx, pipe, pid, budget);
            rows.push(...r.manifests.map((m, i) => ({ manifest: m, note: i === r.manifests.length - 1 ? `final, frozen ${r.downtimeMs.toFixed(0)} ms (${r.stoppedBecause})` : `round ${i + 1}` })));
          }
          return await tagged(rows);
        }
        const rows = [];
        for (const pid of nums) {
          const r = await takeSnapshot(ctx, pipe, { pid, ...(o.live ? { live: true } : {}), ...(o.parent ? { parent: o.parent } : {}) });
          rows.push({ manifest: r.manifest, note: `frozen ${r.capture.freezeMs.toFixed(0)} ms, ${r.ms.toFixed(0)} ms in all` });
        }
        await tagged(rows);
      } finally {
        await pipe.stop();
      }
    });
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
