import { CCtx, CParameter, DCtx, compressBound, findFrameCompressedSize, getFrameContentSize } from 'zstd-napi/binding';

/** The first four bytes of a zstd frame, read little-endian. A pagevault frame starts with "PVFR". */
const ZSTD_MAGIC = 0xfd2fb528;
/** Frames sent without a try after one that did not compress to a third. */
export const SKIP_AFTER_MISS = 15;

/**
 * Compresses frames for Kafka, one zstd frame per record value, where that is cheap and pays: every byte
 * through Kafka costs CPU in the agent, the broker and the compactor's fetch, and so does compressing
 * it. Measured on 2 cores shared by all three (docs/benchmarks.md): redis pages (38× smaller) cold
 * through Kafka in half the time, CPython heaps (4×) a little faster, but Node.js heaps (2.7×) slower
 * than sent as they are. So a frame goes compressed only when that makes it at most a third of its
 * size; after one that does not, the next SKIP_AFTER_MISS frames go as they are without a try, so
 * incompressible streams cost a sixteenth of their compression. One context and one scratch buffer.
 * Each zstd frame states its content size and carries zstd's checksum of it, so the consumer bounds the
 * memory it allocates and knows a damaged record rather than inflating it into other bytes.
 */
export class FrameCompressor {
  private readonly cctx = new CCtx();
  private scratch: Buffer = Buffer.alloc(0);
  private skip = 0;
  /** Frames sent compressed, sent as they are, and sent as they are without a try. */
  readonly counts = { compressed: 0, plain: 0, skipped: 0 };

  constructor(level = 1) {
    this.cctx.setParameter(CParameter.compressionLevel, level);
    this.cctx.setParameter(CParameter.checksumFlag, 1);
  }

  /** zstd of frame in a buffer of its own, or undefined: the frame goes as it is. */
  compress(frame: Buffer): Buffer | undefined {
    if (this.skip > 0) {
      this.skip--;
      this.counts.skipped++;
      return undefined;
    }
    const bound = compressBound(frame.length);
    if (this.scratch.length < bound) this.scratch = Buffer.allocUnsafe(bound);
    const n = this.cctx.compress2(this.scratch, frame);
    if (n * 3 > frame.length) {
      this.skip = SKIP_AFTER_MISS;
      this.counts.plain++;
      return undefined;
    }
    this.counts.compressed++;
    return Buffer.from(this.scratch.subarray(0, n));
  }
}

/**
 * A record value as the frame it carries: a zstd frame is decompressed when it is exactly one frame
 * whose header states a content size of at most maxFrameBytes (no decompression bomb), and decompresses
 * to exactly that; anything else is handed on as it came, so a damaged or hostile record reaches the
 * frame checks downstream (and the dead-letter topic) instead of stopping the consumer.
 */
export class FrameInflater {
  private readonly dctx = new DCtx();

  constructor(private readonly maxFrameBytes: number) {}

  inflate(value: Buffer): Buffer {
    if (value.length < 8 || value.readUInt32LE(0) !== ZSTD_MAGIC) return value;
    try {
      const size = getFrameContentSize(value);
      if (size === null || size > this.maxFrameBytes || findFrameCompressedSize(value) !== value.length) return value;
      const out = Buffer.allocUnsafe(size);
      return this.dctx.decompress(out, value) === size ? out : value;
    } catch {
      return value;
    }
  }
}
