import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { newSnapshotId, type SnapshotWriter } from '@pagevault/format';
import type { FrameProducer } from '@pagevault/framelog';
import { SnapshotStreams } from './snapshot-streams';

export interface ShipOptions<S> {
  producer: FrameProducer;
  maxFrameBytes: number;
  snapshotId?: Uint8Array;
  /**
   * Log key (partition key). Default: the snapshot id. Snapshots that must be compacted in order (the
   * rounds of a pre-copy, whose each round is the parent of the next) share one key, so one partition
   * carries them in order.
   */
  key?: string;
  /**
   * Writes the snapshot through `writer` and awaits `drain()` between batches. It must call
   * writer.abort() before rethrowing any failure after begin (capture does).
   */
  capture: (writer: SnapshotWriter, drain: () => Promise<void>) => Promise<S>;
  /** The streams to ship over (a caller watching their progress); default: new ones on `producer`. */
  streams?: SnapshotStreams;
}

export interface ShipResult<S> {
  snapshotId: string;
  stats: S;
  frames: number;
  bytes: number;
}

/**
 * Streams one capture into the frame log. Frames leave in batches (one send per capture batch, not per
 * frame); `drain` awaits the producer's window, so a slow log slows the capture instead of growing memory.
 * Memory: the frames of one capture batch plus the producer's bounded window.
 * On failure the abort frame is sent when the log still answers; either way no consumer sees an end.
 */
export async function shipSnapshot<S>(o: ShipOptions<S>): Promise<ShipResult<S>> {
  const id = o.snapshotId ?? newSnapshotId();
  const streams = o.streams ?? new SnapshotStreams(o.producer, o.maxFrameBytes);
  const s = streams.open(id, o.key);
  try {
    const stats = await streams.ship(() => o.capture(s.writer, s.drain));
    return { snapshotId: s.snapshotId, stats, frames: streams.frames, bytes: streams.bytes };
  } catch (e) {
    if (isPvError(e)) throw e;
    throw new PvError(ErrorCodes.SNAPSHOT_FAILED, `snapshot ${s.snapshotId} failed: ${String(e)}`, { cause: e });
  }
}
