import {
  FrameType,
  SnapshotWriter,
  StreamValidator,
  decodeFrame,
  newSnapshotId,
  type Frame,
  type SnapshotBegin,
  type VmaHeader,
} from '@pagevault/format';

/** A writer whose frames are kept in memory; `onFrame` runs inside emit (e.g. to look at the frozen target). */
export function collectingWriter(onFrame?: (frame: Buffer, index: number) => void): {
  writer: SnapshotWriter;
  frames: Buffer[];
  snapshotId: Uint8Array;
} {
  const frames: Buffer[] = [];
  const snapshotId = newSnapshotId();
  const writer = new SnapshotWriter({
    snapshotId,
    emit: (f) => {
      frames.push(f);
      onFrame?.(f, frames.length - 1);
    },
  });
  return { writer, frames, snapshotId };
}

export interface DecodedVma {
  header: VmaHeader;
  data: Map<number, Buffer>;
  zero: number[];
  file: number[];
  parent: number[];
}

export interface DecodedSnapshot {
  begin: SnapshotBegin;
  vmas: DecodedVma[];
  state: 'open' | 'end' | 'abort';
  abort?: { code: string; message: string };
  frames: Frame[];
}

const expand = (runs: { start: number; pages: number }[], ps: number): number[] =>
  runs.flatMap((r) => Array.from({ length: r.pages }, (_, i) => r.start + i * ps));

/** Decodes and validates every frame (StreamValidator throws on any violation), then groups them by VMA. */
export function decodeSnapshot(frames: Buffer[], snapshotId: Uint8Array): DecodedSnapshot {
  const v = new StreamValidator(snapshotId);
  const out: DecodedSnapshot = {
    begin: undefined as unknown as SnapshotBegin,
    vmas: [],
    state: 'open',
    frames: [],
  };
  let cur: DecodedVma | undefined;
  for (const raw of frames) {
    const f = decodeFrame(raw);
    v.accept(f);
    out.frames.push(f);
    const b = f.body;
    const ps = out.begin?.pageSize ?? 4096;
    switch (b.type) {
      case FrameType.SnapshotBegin:
        out.begin = b.begin;
        break;
      case FrameType.VmaBegin:
        cur = { header: b.vma, data: new Map(), zero: [], file: [], parent: [] };
        out.vmas.push(cur);
        break;
      case FrameType.PageChunk:
        b.addresses.forEach((a, i) => cur!.data.set(a, b.data.subarray(i * ps, (i + 1) * ps)));
        break;
      case FrameType.ZeroRuns:
        cur!.zero.push(...expand(b.runs, ps));
        break;
      case FrameType.FileRuns:
        cur!.file.push(...expand(b.runs, ps));
        break;
      case FrameType.ParentRuns:
        cur!.parent.push(...expand(b.runs, ps));
        break;
      case FrameType.Abort:
        out.abort = { code: b.code, message: b.message };
        break;
      default:
        break;
    }
  }
  out.state = v.state;
  return out;
}

/** The VMA containing addr. */
export function vmaAt(s: DecodedSnapshot, addr: number): DecodedVma {
  const v = s.vmas.find((x) => x.header.start <= addr && addr < x.header.end);
  if (!v) throw new Error(`no VMA at 0x${addr.toString(16)}`);
  return v;
}

/** Every data page of the snapshot, as address → contents. */
export function allData(s: DecodedSnapshot): Map<number, Buffer> {
  const m = new Map<number, Buffer>();
  for (const v of s.vmas) for (const [a, d] of v.data) m.set(a, d);
  return m;
}

/** What a restore would put at each page: contents, or 'file' (take it from the mapped file). */
export type PageImage = Map<number, Buffer | 'file'>;

/**
 * Applies a snapshot on top of its parent's image, as a restorer resolves a chain: data and zero pages
 * are new, file pages come from the file, same-as-parent pages must exist in the parent's image.
 */
export function applySnapshot(s: DecodedSnapshot, parent: PageImage | undefined, ps: number): PageImage {
  const out: PageImage = new Map();
  for (const v of s.vmas) {
    for (const [a, d] of v.data) out.set(a, d);
    for (const a of v.zero) out.set(a, Buffer.alloc(ps));
    for (const a of v.file) out.set(a, 'file');
    for (const a of v.parent) {
      const p = parent?.get(a);
      if (p === undefined)
        throw new Error(`page 0x${a.toString(16)} is same-as-parent but the parent lacks it`);
      out.set(a, p);
    }
  }
  return out;
}
