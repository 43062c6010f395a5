import { captureSnapshot } from '@pagevault/capture';
import {
  FrameType, SnapshotWriter, StreamValidator, decodeFrame, newSnapshotId, type Frame, type VmaHeader,
} from '@pagevault/format';

/**
 * Captures a (stopped or running) process with @pagevault/capture; returns its frames, decoded and
 * validated. `host` is not this machine's name unless given, so restores do not compare mapped files'
 * devices and inodes (FilePageReader).
 */
export async function captureFrames(pid: number, host = 'restore-outputs'): Promise<Frame[]> {
  const raw: Buffer[] = [];
  const snapshotId = newSnapshotId();
  const writer = new SnapshotWriter({ snapshotId, emit: (f) => raw.push(f) });
  await captureSnapshot({ pid, writer, tenant: 'test', host, freeze: { method: 'signal' } });
  const v = new StreamValidator(snapshotId);
  return raw.map((b) => {
    const f = decodeFrame(b);
    v.accept(f);
    return f;
  });
}

export interface Range {
  start: number;
  end: number;
}

/**
 * Re-encodes a full snapshot keeping only the parts of its VMAs inside `ranges` (each VMA clipped to the
 * range), as a new valid stream: what a target that maps just those ranges can receive.
 */
export function selectRanges(frames: Frame[], ranges: Range[]): Frame[] {
  const out: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: newSnapshotId(), emit: (f) => out.push(f) });
  let ps = 4096;
  let cur: { vma: VmaHeader; range: Range } | undefined;
  const inside = (a: number) => cur !== undefined && a >= cur.range.start && a < cur.range.end;
  for (const f of frames) {
    const b = f.body;
    switch (b.type) {
      case FrameType.SnapshotBegin:
        ps = b.begin.pageSize;
        w.begin(b.begin);
        break;
      case FrameType.VmaBegin: {
        const v = b.vma;
        const range = ranges.find((r) => r.start < v.end && v.start < r.end);
        cur = undefined;
        if (!range) break;
        const start = Math.max(v.start, range.start);
        const { index: _i, ...rest } = v;
        w.beginVma({ ...rest, start, end: Math.min(v.end, range.end), pgoff: v.pgoff + (start - v.start) });
        cur = { vma: v, range };
        break;
      }
      case FrameType.PageChunk: {
        const keep = [...b.addresses.keys()].filter((i) => inside(b.addresses[i]!));
        if (keep.length === 0) break;
        w.addPages(keep.map((i) => b.addresses[i]!), Buffer.concat(keep.map((i) => b.data.subarray(i * ps, (i + 1) * ps))));
        break;
      }
      case FrameType.ZeroRuns:
      case FrameType.FileRuns:
        for (const r of b.runs) {
          for (let k = 0; k < r.pages; k++) {
            const a = r.start + k * ps;
            if (!inside(a)) continue;
            if (b.type === FrameType.ZeroRuns) w.addZero(a, 1);
            else w.addFile(a, 1);
          }
        }
        break;
      case FrameType.VmaEnd:
        if (cur) w.endVma();
        cur = undefined;
        break;
      case FrameType.SnapshotEnd:
        w.end();
        break;
    }
  }
  return out.map((raw) => decodeFrame(raw));
}

export async function* replay<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}
