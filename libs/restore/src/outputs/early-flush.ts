import type { FileHandle } from 'node:fs/promises';

/** Bytes written between two background flushes of one file. */
const FLUSH_BYTES = 64 << 20;

interface FlushState {
  since: number;
  inFlight: Promise<void> | undefined;
  error: unknown;
}

const states = new WeakMap<FileHandle, FlushState>();

/**
 * Starts the writeback of a file while it is still being written, so its final fsync finds little left
 * to flush: every FLUSH_BYTES written, a datasync runs in the background (one at a time per file) while
 * the restore goes on fetching, inflating and verifying. Without it a restore computed first and waited
 * for the disk after (fsync was a third to a half of a raw restore); with it the two overlap. An error
 * of a background flush (EIO, ENOSPC) is kept and thrown by `settle`, so it is never lost.
 */
export function flushEarly(fh: FileHandle): void {
  states.set(fh, { since: 0, inFlight: undefined, error: undefined });
}

/** Counts bytes written to fh, starting a background flush when enough accumulated. */
export function wrote(fh: FileHandle, bytes: number): void {
  const s = states.get(fh);
  if (!s) return;
  s.since += bytes;
  if (s.since < FLUSH_BYTES || s.inFlight) return;
  s.since = 0;
  s.inFlight = fh
    .datasync()
    .catch((e: unknown) => {
      s.error ??= e;
    })
    .finally(() => {
      s.inFlight = undefined;
    });
}

/** Waits for fh's background flush, if any, and throws the error one of them met. */
export async function settle(fh: FileHandle): Promise<void> {
  const s = states.get(fh);
  if (!s) return;
  await s.inFlight;
  states.delete(fh);
  if (s.error !== undefined) throw s.error;
}
