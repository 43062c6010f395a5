import { ErrorCodes, PvError } from '@pagevault/errors';
import {
  FrameType, StreamValidator, idToHex, type Frame, type PageRun, type SnapshotBegin, type SnapshotEnd, type VmaHeader,
} from '@pagevault/format';

/**
 * How a snapshot ended. From frames: the snapshot-end frame as sent. From a direct walk of stored pages
 * (SnapshotSource): the counts only, as no frames exist to count or digest.
 */
export type EndInfo = Omit<SnapshotEnd, 'frameCount' | 'digest'> & Partial<Pick<SnapshotEnd, 'frameCount' | 'digest'>>;

/** The parts of a full snapshot stream, in stream order. Every callback may be async; each is awaited. */
export interface SnapshotVisitor {
  begin?(begin: SnapshotBegin, snapshotId: Uint8Array): unknown;
  vmaBegin?(vma: VmaHeader): unknown;
  /** A page chunk: addresses ascending, data[i * pageSize, (i + 1) * pageSize) is the page at addresses[i]. */
  pages?(vma: VmaHeader, addresses: Float64Array, data: Buffer): unknown;
  zeroRuns?(vma: VmaHeader, runs: PageRun[]): unknown;
  fileRuns?(vma: VmaHeader, runs: PageRun[]): unknown;
  vmaEnd?(vma: VmaHeader): unknown;
  end?(end: EndInfo): unknown;
  /** Every frame, before the typed callback (the stream output keeps the raw bytes). */
  frame?(frame: Frame): unknown;
}

/**
 * A full snapshot that can also call a visitor directly, without encoding frames: the restorer's stored
 * snapshots (restoreSnapshot), whose pages are verified against their hashes as they are fetched. It
 * calls the visitor in the order a frame walk would (per VMA: pages in address order, then zero runs, then
 * file runs, then its end), and rejects instead of ending when anything is missing or corrupt.
 */
export interface SnapshotSource extends AsyncIterable<Frame> {
  visit(visitor: SnapshotVisitor): Promise<EndInfo>;
}

/** Frames to validate and walk, or a snapshot source that can be visited directly. */
export type SnapshotInput = AsyncIterable<Frame> | SnapshotSource;

/**
 * Feeds a full snapshot to a visitor. A SnapshotSource visits it directly unless the visitor wants the
 * frames themselves (`frame`); otherwise frames are walked one await per frame. With `validate` (the default) each frame
 * passes a StreamValidator first, so a visitor never sees a frame out of order, outside its VMA or after a
 * bad digest. Whatever `validate` says, a stream that aborts, carries same-as-parent runs (a restored stream
 * is full) or ends before snapshot-end is rejected, so no output is ever completed from it.
 */
export async function walkSnapshot(input: SnapshotInput, visitor: SnapshotVisitor, validate = true): Promise<EndInfo> {
  if ('visit' in input && !visitor.frame) return input.visit(visitor);
  return walkFrames(input, visitor, validate);
}

async function walkFrames(frames: AsyncIterable<Frame>, visitor: SnapshotVisitor, validate: boolean): Promise<SnapshotEnd> {
  let validator: StreamValidator | undefined;
  let id: Uint8Array | undefined;
  let vma: VmaHeader | undefined;
  for await (const f of frames) {
    id ??= f.snapshotId;
    if (validate) (validator ??= new StreamValidator(f.snapshotId)).accept(f);
    await visitor.frame?.(f);
    const b = f.body;
    const where = () => `snapshot ${idToHex(f.snapshotId)} frame ${f.sequence}`;
    switch (b.type) {
      case FrameType.SnapshotBegin:
        await visitor.begin?.(b.begin, f.snapshotId);
        break;
      case FrameType.VmaBegin:
        vma = b.vma;
        await visitor.vmaBegin?.(vma);
        break;
      case FrameType.PageChunk:
        await visitor.pages?.(need(vma, where), b.addresses, b.data);
        break;
      case FrameType.ZeroRuns:
        await visitor.zeroRuns?.(need(vma, where), b.runs);
        break;
      case FrameType.FileRuns:
        await visitor.fileRuns?.(need(vma, where), b.runs);
        break;
      case FrameType.ParentRuns:
        throw new PvError(ErrorCodes.STREAM_ORDER, `${where()}: same-as-parent pages; outputs need a full (reassembled) stream`);
      case FrameType.VmaEnd:
        await visitor.vmaEnd?.(need(vma, where));
        vma = undefined;
        break;
      case FrameType.SnapshotEnd:
        await visitor.end?.(b.end);
        return b.end;
      case FrameType.Abort:
        throw new PvError(ErrorCodes.STREAM_ABORTED, `${where()}: snapshot aborted (${b.code}): ${b.message}`, {
          details: { snapshot: idToHex(f.snapshotId), abortCode: b.code },
        });
    }
  }
  const what = id ? `snapshot ${idToHex(id)}` : 'an empty stream';
  throw new PvError(ErrorCodes.FRAME_TRUNCATED, `${what} ends before its snapshot-end frame`);
}

function need(vma: VmaHeader | undefined, where: () => string): VmaHeader {
  if (!vma) throw new PvError(ErrorCodes.STREAM_ORDER, `${where()}: pages outside any VMA`);
  return vma;
}
