import { captureGroup, preCopy, type GroupTargets } from '@pagevault/capture';
import { idToHex, newSnapshotId } from '@pagevault/format';
import type { Manifest } from '@pagevault/repo';
import { SnapshotStreams } from '@pagevault/shipper';
import type { Context } from '../context';
import type { Pipeline } from '../pipeline';

/**
 * Several processes as of one instant (a pid list, a process tree, or a cgroup): all frozen before any
 * is read, one snapshot each with a common group id. Resolves with every member's manifest.
 */
export async function takeGroup(ctx: Context, pipe: Pipeline, targets: GroupTargets): Promise<Manifest[]> {
  const producer = pipe.log.producer();
  const streams = new SnapshotStreams(producer, pipe.log.maxFrameBytes);
  const committed: Promise<Manifest>[] = [];
  try {
    await captureGroup({
      targets, groupId: newSnapshotId(), tenant: ctx.tenantName, host: ctx.host,
      snapshotFor: () => {
        const s = streams.open(newSnapshotId());
        committed.push(pipe.committed(s.snapshotId));
        return { writer: s.writer, drain: s.drain };
      },
    });
    await streams.flush();
    return await Promise.all(committed);
  } catch (e) {
    await streams.flushQuietly();
    committed.forEach((p) => p.catch(() => undefined));
    throw e;
  } finally {
    await producer.close().catch(() => undefined);
  }
}

/**
 * Pre-copy: live rounds, each an incremental of the previous carrying what changed, until a round fits
 * the budget or stops shrinking; then a frozen final round. All rounds share one log key, so each is
 * compacted after its parent. Resolves with every round's manifest; the last is the consistent one.
 */
export async function takePreCopy(ctx: Context, pipe: Pipeline, pid: number, budgetPages: number): Promise<{ manifests: Manifest[]; stoppedBecause: string; downtimeMs: number }> {
  const producer = pipe.log.producer();
  const streams = new SnapshotStreams(producer, pipe.log.maxFrameBytes);
  const committed: Promise<Manifest>[] = [];
  const key = idToHex(newSnapshotId());
  try {
    const r = await preCopy({
      pid, tenant: ctx.tenantName, host: ctx.host, budgetPages,
      round: () => {
        const id = newSnapshotId();
        const s = streams.open(id, key);
        committed.push(pipe.committed(s.snapshotId));
        return { writer: s.writer, snapshotId: id, drain: s.drain };
      },
    });
    await streams.flush();
    return { manifests: await Promise.all(committed), stoppedBecause: r.stoppedBecause, downtimeMs: r.rounds.at(-1)!.stats.freezeMs };
  } catch (e) {
    await streams.flushQuietly();
    committed.forEach((p) => p.catch(() => undefined));
    throw e;
  } finally {
    await producer.close().catch(() => undefined);
  }
}
