import { FramePool, SnapshotWriter, frameSealer, idToHex } from '@pagevault/format';
import type { FrameProducer } from '@pagevault/framelog';

export interface OpenStream {
  snapshotId: string;
  writer: SnapshotWriter;
  /** Sends what this stream's writer emitted so far (and, for an ordered key, what earlier streams did). */
  drain: () => Promise<void>;
}

interface Stream {
  key: string;
  writer: SnapshotWriter;
  queue: Buffer[];
  /** Bytes of the frames in `queue`. */
  queued: number;
}

/**
 * A drain sends a stream's frames once this many are queued. A capture drains after every batch, and on
 * a heap of a thousand small VMAs a batch is a VMA's few frames of a few KiB: sent one batch at a time,
 * each became a send, a spool entry and its own small disk writes while the target was frozen. A full
 * chunk frame (1 MiB − 4 KiB) goes at once; at most this much more is held per stream.
 */
const SEND_MIN_BYTES = 512 * 1024;

/**
 * Several snapshot streams over one producer: one per member of a group capture, or one per pre-copy
 * round. Each stream's frames are queued by its writer and sent in batches by drain(). Streams opened with
 * the same key are drained in the order they were opened, so a pre-copy round never overtakes its parent.
 */
export class SnapshotStreams {
  private readonly streams: Stream[] = [];
  /** Chunk frames the producer is done with (written to its spool) are filled again. */
  private readonly pool = new FramePool();
  private readonly recycle = (frames: Buffer[]) => this.pool.giveAll(frames);
  frames = 0;
  bytes = 0;
  /** Where ship() is: the capture running (frames queued or spooled), or its frames going to the log. */
  phase: 'idle' | 'capturing' | 'shipping' | 'done' = 'idle';

  constructor(
    private readonly producer: FrameProducer,
    private readonly maxFrameBytes: number,
  ) {}

  open(snapshotId: Uint8Array, key = idToHex(snapshotId)): OpenStream {
    const writer = new SnapshotWriter({
      snapshotId, maxFrameBytes: this.maxFrameBytes, pool: this.pool, sealer: frameSealer(),
      emit: (f) => {
        s.queue.push(f);
        s.queued += f.length;
        this.frames++;
        this.bytes += f.length;
      },
    });
    const s: Stream = { key, writer, queue: [], queued: 0 };
    this.streams.push(s);
    // Earlier streams of the key go whole (their frames come first); this one once it has SEND_MIN_BYTES.
    const drain = async () => {
      for (const o of this.streams) {
        if (o === s) {
          if (s.queued >= SEND_MIN_BYTES) await this.send(s);
          break;
        }
        if (o.key === key) await this.send(o);
      }
    };
    return { snapshotId: idToHex(snapshotId), writer, drain };
  }

  /**
   * Ends every stream not ended yet with an abort frame (the agent stopping): the capture's next write
   * then fails, and ship() sends what is queued, the aborts last, so no consumer waits for an end.
   */
  abortAll(code: string, message: string): void {
    for (const s of this.streams) s.writer.abort(code, message);
  }

  /** Sends everything queued and waits until the log has acknowledged it. */
  async flush(): Promise<void> {
    for (const s of this.streams) await this.send(s);
    await this.producer.flush();
  }

  /**
   * Runs a capture over these streams, then sends and flushes everything. On failure the abort frames
   * the capture queued go out if the log still answers (no consumer sees an end), and the error is rethrown.
   */
  async ship<T>(capture: () => Promise<T>): Promise<T> {
    // A spooling producer keeps the frames local while the capture runs (the target may be frozen) and
    // ships them once it has ended.
    const release = this.producer.hold?.();
    this.phase = 'capturing';
    try {
      const r = await capture();
      release?.();
      this.phase = 'shipping';
      await this.flush();
      return r;
    } catch (e) {
      release?.();
      this.phase = 'shipping';
      await this.flush().catch(() => undefined);
      throw e;
    } finally {
      this.phase = 'done';
    }
  }

  private async send(s: Stream): Promise<void> {
    if (s.queue.length === 0) return;
    const out = s.queue;
    s.queue = [];
    s.queued = 0;
    await this.producer.send(s.key, out, this.recycle);
  }
}
