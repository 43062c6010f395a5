import { alignUp, alignedBuffer } from './aligned-buffer';

/**
 * A bounded free list of full page-chunk frames. A fresh 1 MiB buffer costs page faults and zeroing on
 * first touch: filling one measured 2.6–3.7 GB/s here against 25–28 GB/s for a reused one, which made
 * the copy into frames a third of a capture. A receiver done with a frame (written to a file, or
 * acknowledged by the log) gives it back, and the writer fills its next chunk from here.
 *
 * Frames are allocated aligned to DIRECT_ALIGN with room up to the next block, so a spool can write one
 * with O_DIRECT as it is (paddedView). Only frames this pool handed out, of the size last taken, are
 * kept, at most `maxFrames` of them; anything else given back is left to the garbage collector. A frame
 * given back MUST NOT be referenced anymore.
 */
export class FramePool {
  private readonly free: Buffer[] = [];
  /** The buffers this pool handed out: only those come back into it. */
  private readonly mine = new WeakSet<Buffer>();
  private frameBytes = 0;
  /** Frames handed out again instead of allocated. */
  reused = 0;

  constructor(readonly maxFrames = 32) {}

  /** A buffer of `bytes` with unspecified contents. */
  take(bytes: number): Buffer {
    if (bytes !== this.frameBytes) {
      this.free.length = 0;
      this.frameBytes = bytes;
    }
    const f = this.free.pop();
    if (f) {
      this.reused++;
      return f;
    }
    // Aligned, with room up to the next block: a spool writes the frame with O_DIRECT as it is (paddedView).
    const b = alignedBuffer(alignUp(bytes)).subarray(0, bytes);
    this.mine.add(b);
    return b;
  }

  give(frame: Buffer): void {
    if (frame.length !== this.frameBytes || !this.mine.has(frame) || this.free.length >= this.maxFrames) return;
    // Twice in the list would hand one buffer to two chunks.
    if (!this.free.includes(frame)) this.free.push(frame);
  }

  /** Gives back every frame of a batch the receiver is done with. */
  giveAll(frames: readonly Buffer[]): void {
    for (const f of frames) this.give(f);
  }

  get size(): number {
    return this.free.length;
  }
}
