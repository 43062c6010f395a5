import type { Command } from 'commander';
import { captureSnapshot, type CaptureStats } from '@pagevault/capture';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { Consistency, idFromHex, newSnapshotId, idToHex } from '@pagevault/format';
import type { Manifest } from '@pagevault/repo';
import { shipSnapshot } from '@pagevault/shipper';
import { openContext, type Context, type GlobalOptions } from '../context';
import { bytes, printJson, printTable } from '../output';
import { parentHashTable } from '../parent-hashes';
import { Pipeline } from '../pipeline';
import { resolveSnapshot } from './read';

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
  const parent = parentManifest ? { id: idFromHex(parentManifest.snapshotId), hashes: await parentHashTable(t, parentManifest) } : undefined;
  const id = newSnapshotId();
  const committed = pipe.committed(idToHex(id));
  const producer = pipe.log.producer();
  try {
    const shipped = await shipSnapshot({
      producer, maxFrameBytes: pipe.log.maxFrameBytes, snapshotId: id,
      capture: (writer, drain) => captureSnapshot({
        pid: req.pid, writer, drain, tenant: ctx.tenantName, host: ctx.host,
        consistency: req.live ? Consistency.Live : Consistency.Frozen, ...(parent ? { parent } : {}),
      }),
    });
    const manifest = await committed;
    return { manifest, capture: shipped.stats.stats, frames: shipped.frames, frameBytes: shipped.bytes, ms: performance.now() - t0 };
  } finally {
    committed.catch(() => undefined);
    await producer.close().catch(() => undefined);
  }
}

export function registerSnapshotCommand(program: Command, globals: () => GlobalOptions): void {
  program.command('snapshot <pids...>').description('snapshot the memory of running processes')
    .option('--live', 'read without freezing (fuzzy, marked live)')
    .option('--parent <snapshot>', 'incremental against this snapshot (id, prefix or "latest")')
    .action(async (pids: string[], o: { live?: boolean; parent?: string }) => {
      const ctx = openContext(globals());
      const pipe = new Pipeline(ctx);
      await pipe.start();
      try {
        const rows = [];
        for (const p of pids) {
          const pid = Number(p);
          if (!Number.isInteger(pid) || pid <= 0) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `not a pid: ${p}`);
          const r = await takeSnapshot(ctx, pipe, { pid, ...(o.live ? { live: true } : {}), ...(o.parent ? { parent: o.parent } : {}) });
          rows.push(r);
        }
        if (ctx.json) printJson(rows.map((r) => ({ snapshotId: r.manifest.snapshotId, manifest: r.manifest.counts, capture: r.capture, ms: Math.round(r.ms) })));
        else printTable(rows.map((r) => ({
          id: r.manifest.snapshotId, pid: r.manifest.pid, data: r.manifest.counts.dataPages, zero: r.manifest.counts.zeroPages,
          parent: r.manifest.counts.parentPages, new: r.manifest.counts.newPages, stored: bytes(r.manifest.counts.newBytes),
          frozen: `${r.capture.freezeMs.toFixed(0)} ms`, total: `${r.ms.toFixed(0)} ms`,
        })));
      } finally {
        await pipe.stop();
      }
    });
}
