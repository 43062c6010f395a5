import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { PageRun } from '@pagevault/format';
import { atomicFile } from './atomic-output';
import { openOutputFile } from './output-file';
import { emptyCounts, type FileOutputOptions, type OutputStats } from './output-types';
import { walkSnapshot, type SnapshotInput } from './snapshot-walk';

export type StreamOutputOptions = Omit<FileOutputOptions, 'fileRoot'>;

/** Small frames gathered per write to a file. */
const STAGE_BYTES = 1 << 20;

export interface StreamStats extends OutputStats {
  frames: number;
}

/**
 * Writes the frames' bytes back to back: the stream-format file (docs/format.md), which FrameSplitter
 * reads back. To a path it goes through a fresh `path.partial-<random>` and a rename; to a Writable it honours
 * backpressure (waits for 'drain') and does not end the stream; frames reach it as they come, so if this
 * rejects the Writable has received a prefix of an invalid stream and must be discarded. File pages are counted, not filled: the
 * stream carries file runs as they are. Memory: one frame at a time, plus the Writable's own buffer (to a path: 1 MiB of small frames).
 */
export async function writeStream(frames: SnapshotInput, out: Writable | string, opts: StreamOutputOptions = {}): Promise<StreamStats> {
  const t0 = performance.now();
  const stats = { bytesWritten: 0, pages: emptyCounts(), vmas: 0, frames: 0, missingFiles: [] };
  const count = (runs: PageRun[]) => runs.reduce((n, r) => n + r.pages, 0);
  const walk = (put: (raw: Buffer) => Promise<void>) =>
    walkSnapshot(
      frames,
      {
        frame: async (f) => {
          await put(f.raw);
          stats.bytesWritten += f.raw.length;
          stats.frames++;
        },
        vmaBegin: () => void stats.vmas++,
        pages: (_v, addresses) => void (stats.pages.data += addresses.length),
        zeroRuns: (_v, runs) => void (stats.pages.zero += count(runs)),
        fileRuns: (_v, runs) => void (stats.pages.file += count(runs)),
      },
      opts.validate ?? true,
    );
  if (typeof out !== 'string') {
    await walk(async (raw) => {
      if (!out.write(raw)) await once(out, 'drain');
    });
  } else {
    const fsync = opts.fsync ?? true;
    await atomicFile(out, fsync, async (tmp) => {
      // Frames land at any offset: no direct I/O (it needs aligned writes); the page cache, flushed early.
      const fh = await openOutputFile(tmp, { fsync, direct: false });
      let position = 0;
      // Small frames (a VMA's begin, end and runs) are gathered into one write: a process of thousands of
      // small VMAs spent most of its restore in one write call per frame. Page chunks go as they are.
      const staged = Buffer.allocUnsafe(STAGE_BYTES);
      let used = 0;
      const flush = async () => {
        if (used > 0) position += await fh.write(staged.subarray(0, used), position);
        used = 0;
      };
      try {
        await walk(async (raw) => {
          if (raw.length > STAGE_BYTES / 4) {
            await flush();
            position += await fh.write(raw, position);
            return;
          }
          if (used + raw.length > STAGE_BYTES) await flush();
          used += raw.copy(staged, used);
        });
        await flush();
      } catch (e) {
        await fh.abandon();
        throw e;
      }
      await fh.finish();
    }, opts.replace);
  }
  return { ...stats, elapsedMs: performance.now() - t0 };
}
