import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { SnapshotWriter, idToHex, newSnapshotId } from '@pagevault/format';
import type { FrameProducer } from '@pagevault/framelog';

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
  const key = o.key ?? idToHex(id);
  let queued: Buffer[] = [];
  let frames = 0;
  let bytes = 0;
  const writer = new SnapshotWriter({
    snapshotId: id,
    maxFrameBytes: o.maxFrameBytes,
    emit: (f) => {
      queued.push(f);
      frames++;
      bytes += f.length;
    },
  });
  const drain = async () => {
    if (queued.length === 0) return;
    const out = queued;
    queued = [];
    await o.producer.send(key, out);
  };
  try {
    const stats = await o.capture(writer, drain);
    await drain();
    await o.producer.flush();
    return { snapshotId: idToHex(id), stats, frames, bytes };
  } catch (e) {
    // The abort frame (queued by the capture) goes out if the log still answers.
    await drain().then(() => o.producer.flush()).catch(() => undefined);
    if (isPvError(e)) throw e;
    throw new PvError(ErrorCodes.SNAPSHOT_FAILED, `snapshot ${idToHex(id)} failed: ${String(e)}`, { cause: e });
  }
}
