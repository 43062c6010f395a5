import { describe, expect, it } from 'vitest';
import { ErrorCodes, isPvError } from '@pagevault/errors';
import { FrameType, decodeFrame, encodeAbort, type Frame } from '@pagevault/format';
import { walkSnapshot } from './snapshot-walk';
import { collect, replay, syntheticFrames } from './testing/synthetic-frames';

const snap = { vmas: [{ start: 0x10000, pages: 8, data: [0, 1, 5], zero: [2], file: [7] }] };

async function code(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    return isPvError(e) ? e.code : String(e);
  }
}

describe('walkSnapshot', () => {
  it('hands a full snapshot to the visitor in stream order', async () => {
    const seen: string[] = [];
    await walkSnapshot(syntheticFrames(snap), {
      begin: () => seen.push('begin'),
      vmaBegin: (v) => seen.push(`vma ${v.index}`),
      pages: (_v, a) => seen.push(`pages ${a.length}`),
      zeroRuns: (_v, r) => seen.push(`zero ${r.length}`),
      fileRuns: (_v, r) => seen.push(`file ${r.length}`),
      vmaEnd: () => seen.push('vma end'),
      end: (e) => seen.push(`end ${e.dataPages}`),
    });
    expect(seen).toEqual(['begin', 'vma 0', 'pages 3', 'zero 1', 'file 1', 'vma end', 'end 3']);
  });

  it('rejects a stream that ends before snapshot-end', async () => {
    const frames = await collect(syntheticFrames(snap));
    expect(await code(walkSnapshot(replay(frames.slice(0, -1)), {}))).toBe(ErrorCodes.FRAME_TRUNCATED);
    expect(await code(walkSnapshot(replay(frames.slice(0, -1)), {}, false))).toBe(ErrorCodes.FRAME_TRUNCATED);
  });

  it('rejects an aborted stream', async () => {
    const frames = await collect(syntheticFrames(snap));
    const abort = decodeFrame(encodeAbort(frames[0]!.snapshotId, 2, 'PV_READ_FAILED', 'gone'));
    expect(await code(walkSnapshot(replay([...frames.slice(0, 2), abort]), {}))).toBe(ErrorCodes.STREAM_ABORTED);
  });

  it('validates frames unless told they were validated already', async () => {
    const frames = await collect(syntheticFrames(snap));
    const swapped: Frame[] = [frames[0]!, frames[2]!, frames[1]!, ...frames.slice(3)];
    expect(await code(walkSnapshot(replay(swapped), {}))).toBe(ErrorCodes.STREAM_SEQUENCE);
    const chunk = frames.findIndex((f) => f.type === FrameType.PageChunk);
    const dropped = frames.filter((_, i) => i !== chunk);
    expect(await code(walkSnapshot(replay(dropped), {}))).toBe(ErrorCodes.STREAM_SEQUENCE);
  });
});
