import { captureGroup, preCopy, type GroupTargets } from '@pagevault/capture';
import { idToHex, newSnapshotId } from '@pagevault/format';
import type { Manifest } from '@pagevault/repo';
import { SnapshotStreams } from '@pagevault/shipper';
import type { Context } from '../context';
import type { Pipeline } from '../pipeline';

/**
 * Runs a capture that writes several snapshots over one producer, and resolves with their manifests
 * once the pipeline has committed them all.
 */
async function shipMany<T>(pipe: Pipeline, capture: (streams: SnapshotStreams, expect: (id: string) => void) => Promise<T>): Promise<{ result: T; manifests: Manifest[] }> {
  const producer = pipe.log.producer();
  const streams = new SnapshotStreams(producer, pipe.log.maxFrameBytes);
  const committed: Promise<Manifest>[] = [];
  const ids: string[] = [];
  try {
    const result = await streams.ship(() => capture(streams, (id) => (ids.push(id), committed.push(pipe.committed(id)))));
    pipe.shipped(ids);
    return { result, manifests: await Promise.all(committed) };
  } finally {
    committed.forEach((p) => p.catch(() => undefined));
    await producer.close().catch(() => undefined);
  }
}

/**
 * Several processes as of one instant (a pid list, a process tree, or a cgroup): all frozen before any
 * is read, one snapshot each with a common group id. Resolves with every member's manifest.
 */
export async function takeGroup(ctx: Context, pipe: Pipeline, targets: GroupTargets): Promise<Manifest[]> {
  const r = await shipMany(pipe, (streams, expect) =>
    captureGroup({
      targets, groupId: newSnapshotId(), tenant: ctx.tenantName, host: ctx.host,
      snapshotFor: () => {
        const s = streams.open(newSnapshotId());
        expect(s.snapshotId);
        return { writer: s.writer, drain: s.drain };
      },
    }),
  );
  return r.manifests;
}

/**
 * Pre-copy: live rounds, each an incremental of the previous carrying what changed, until a round fits
 * the budget or stops shrinking; then a frozen final round. All rounds share one log key, so each is
 * compacted after its parent. Resolves with every round's manifest; the last is the consistent one.
 */
export async function takePreCopy(ctx: Context, pipe: Pipeline, pid: number, budgetPages: number): Promise<{ manifests: Manifest[]; stoppedBecause: string; downtimeMs: number }> {
  const key = idToHex(newSnapshotId());
  const r = await shipMany(pipe, (streams, expect) =>
    preCopy({
      pid, tenant: ctx.tenantName, host: ctx.host, budgetPages,
      round: () => {
        const id = newSnapshotId();
        const s = streams.open(id, key);
        expect(s.snapshotId);
        return { writer: s.writer, snapshotId: id, drain: s.drain };
      },
    }),
  );
  return { manifests: r.manifests, stoppedBecause: r.result.stoppedBecause, downtimeMs: r.result.rounds.at(-1)!.stats.freezeMs };
}
