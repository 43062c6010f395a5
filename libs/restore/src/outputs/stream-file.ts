import { once } from 'node:events';
import type { Writable } from 'node:stream';
import type { PageRun } from '@pagevault/format';
import { atomicFile } from './atomic-output';
import { openOutputFile, type OutputFile } from './output-file';
import { emptyCounts, type FileOutputOptions, type OutputStats } from './output-types';
import { walkSnapshot, type SnapshotInput } from './snapshot-walk';

export type StreamOutputOptions = Omit<FileOutputOptions, 'fileRoot'>;

/** Small frames gathered per write to a file. */
const STAGE_BYTES = 1 << 20;

/**
 * Frames appended back to back to a stream-format file, the small ones (a VMA's begin, end and runs)
 * gathered into one write: a process of thousands of small VMAs spent most of its restore, or its dump,
 * in one write call per frame. Page chunks go as they are. flush() once the last is appended.
 */
export class FrameAppender {
  private readonly staged = Buffer.allocUnsafe(STAGE_BYTES);
  private used = 0;
  /** Bytes written to the file so far. */
  position = 0;

  constructor(private readonly fh: OutputFile) {}

  async append(frame: Buffer): Promise<void> {
    if (frame.length > STAGE_BYTES / 4) {
      await this.flush();
      this.position += await this.fh.write(frame, this.position);
      return;
    }
    if (this.used + frame.length > STAGE_BYTES) await this.flush();
    this.used += frame.copy(this.staged, this.used);
  }

  async flush(): Promise<void> {
    if (this.used > 0) this.position += await this.fh.write(this.staged.subarray(0, this.used), this.position);
    this.used = 0;
  }
}

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
      const frames = new FrameAppender(fh);
      try {
        await walk((raw) => frames.append(raw));
        await frames.flush();
      } catch (e) {
        await fh.abandon();
        throw e;
      }
      await fh.finish();
    }, opts.replace);
  }
  return { ...stats, elapsedMs: performance.now() - t0 };
}
