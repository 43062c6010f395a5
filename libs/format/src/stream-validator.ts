import { createHash, timingSafeEqual } from 'node:crypto';
import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { FrameType, HEADER_BYTES, SnapshotMode, VmaFlag } from './constants';
import { idToHex } from './ids';
import type { Frame, SnapshotBegin, SnapshotEnd, VmaHeader } from './types';

const ORDER: Partial<Record<FrameType, number>> = {
  [FrameType.PageChunk]: 0,
  [FrameType.ZeroRuns]: 1,
  [FrameType.FileRuns]: 2,
  [FrameType.ParentRuns]: 3,
};

/**
 * Checks that the frames of one snapshot form a valid stream, frame by frame, in constant memory:
 * one snapshot id, consecutive sequence numbers from 0, begin first, VMAs ascending and disjoint, every
 * page and run page-aligned inside its VMA and ascending in canonical order, and an end whose counts and
 * digest match what came before. Throws a PvError naming the snapshot, frame and address.
 */
export class StreamValidator {
  private next = 0;
  private readonly digest = createHash('sha256');
  private begin: SnapshotBegin | undefined;
  private vma: VmaHeader | undefined;
  private prevVmaEnd = -1;
  private vmaCount = 0;
  private stage = 0;
  private lastAddr = -1;
  /**
   * Page ranges of the current VMA as flat [start, end) pairs, ascending: `earlier` holds those of the
   * kinds already finished, `current` those of the kind being read, so a page given as two kinds (data
   * and zero, say) is caught. Memory: at most one pair per discontiguous range of pages in one VMA, the
   * same bound as the writer's run lists.
   */
  private earlier: number[] = [];
  private current: number[] = [];
  private cursor = 0;
  private readonly counts = { dataPages: 0, zeroPages: 0, filePages: 0, parentPages: 0 };
  private done: 'end' | 'abort' | undefined;

  constructor(readonly snapshotId: Uint8Array) {}

  get state(): 'open' | 'end' | 'abort' {
    return this.done ?? 'open';
  }

  get header(): SnapshotBegin | undefined {
    return this.begin;
  }

  accept(f: Frame): void {
    const where = `snapshot ${idToHex(this.snapshotId)} frame ${f.sequence}`;
    if (Buffer.compare(f.snapshotId, this.snapshotId) !== 0) this.fail(ErrorCodes.STREAM_ORDER, `${where}: belongs to snapshot ${idToHex(f.snapshotId)}`);
    if (this.done) this.fail(ErrorCodes.STREAM_ORDER, `${where}: frame after the snapshot ${this.done === 'end' ? 'ended' : 'was aborted'}`);
    if (f.sequence !== this.next) {
      this.fail(ErrorCodes.STREAM_SEQUENCE, `${where}: expected sequence ${this.next}`, { expected: this.next, got: f.sequence });
    }
    this.next++;
    const b = f.body;
    if (b.type !== FrameType.SnapshotBegin && !this.begin && b.type !== FrameType.Abort) {
      this.fail(ErrorCodes.STREAM_ORDER, `${where}: first frame must be snapshot-begin`);
    }
    switch (b.type) {
      case FrameType.SnapshotBegin:
        if (this.begin) this.fail(ErrorCodes.STREAM_ORDER, `${where}: second snapshot-begin`);
        if (b.begin.mode === SnapshotMode.Incremental && !b.begin.parentId) {
          this.fail(ErrorCodes.FRAME_MALFORMED, `${where}: incremental snapshot without a parent`);
        }
        this.begin = b.begin;
        break;
      case FrameType.VmaBegin: {
        const v = b.vma;
        if (this.vma) this.fail(ErrorCodes.STREAM_ORDER, `${where}: VMA ${v.index} begins inside VMA ${this.vma.index}`);
        if (v.index !== this.vmaCount) this.fail(ErrorCodes.STREAM_ORDER, `${where}: VMA index ${v.index}, expected ${this.vmaCount}`);
        const ps = this.begin!.pageSize;
        if (v.start % ps || v.end % ps || v.end <= v.start) {
          this.fail(ErrorCodes.STREAM_ADDRESS, `${where}: VMA ${hex(v.start)}-${hex(v.end)} is empty or not page-aligned`);
        }
        if (v.start < this.prevVmaEnd) {
          this.fail(ErrorCodes.STREAM_ADDRESS, `${where}: VMA ${hex(v.start)}-${hex(v.end)} overlaps or precedes the VMA ending at ${hex(this.prevVmaEnd)}`);
        }
        this.vma = v;
        this.vmaCount++;
        this.stage = 0;
        this.lastAddr = -1;
        this.earlier = [];
        this.current = [];
        this.cursor = 0;
        break;
      }
      case FrameType.PageChunk: {
        const v = this.inVma(where, f.type);
        if (b.pageSize !== this.begin!.pageSize) this.fail(ErrorCodes.FRAME_MALFORMED, `${where}: page size ${b.pageSize}, snapshot has ${this.begin!.pageSize}`);
        if (b.addresses.length === 0) this.fail(ErrorCodes.FRAME_MALFORMED, `${where}: empty page chunk`);
        for (let i = 0; i < b.addresses.length; i++) this.page(where, v, b.addresses[i]!, 1);
        this.counts.dataPages += b.addresses.length;
        break;
      }
      case FrameType.ZeroRuns:
      case FrameType.FileRuns:
      case FrameType.ParentRuns: {
        const v = this.inVma(where, f.type);
        if (b.type === FrameType.ParentRuns && this.begin!.mode !== SnapshotMode.Incremental) {
          this.fail(ErrorCodes.STREAM_ORDER, `${where}: same-as-parent pages in a full snapshot`);
        }
        let pages = 0;
        for (const r of b.runs) {
          if (r.pages < 1) this.fail(ErrorCodes.FRAME_MALFORMED, `${where}: empty run at ${hex(r.start)}`);
          this.page(where, v, r.start, r.pages);
          pages += r.pages;
        }
        const key = b.type === FrameType.ZeroRuns ? 'zeroPages' : b.type === FrameType.FileRuns ? 'filePages' : 'parentPages';
        this.counts[key] += pages;
        break;
      }
      case FrameType.VmaEnd: {
        const v = this.vma;
        if (!v || b.index !== v.index) this.fail(ErrorCodes.STREAM_ORDER, `${where}: VMA end ${b.index} without its begin`);
        this.prevVmaEnd = v.end;
        this.vma = undefined;
        break;
      }
      case FrameType.SnapshotEnd:
        if (this.vma) this.fail(ErrorCodes.STREAM_ORDER, `${where}: snapshot ends inside VMA ${this.vma.index}`);
        this.checkEnd(where, b.end, f.sequence);
        this.done = 'end';
        return;
      case FrameType.Abort:
        this.done = 'abort';
        return;
    }
    this.digest.update(f.raw.subarray(0, HEADER_BYTES));
  }

  private inVma(where: string, type: FrameType): VmaHeader {
    const v = this.vma;
    if (!v) this.fail(ErrorCodes.STREAM_ORDER, `${where}: pages outside any VMA`);
    if (v.flags & (VmaFlag.NoContents | VmaFlag.SharedElsewhere)) this.fail(ErrorCodes.STREAM_ORDER, `${where}: pages in VMA ${v.index}, which carries none`);
    const stage = ORDER[type]!;
    if (stage < this.stage) this.fail(ErrorCodes.STREAM_ORDER, `${where}: frame type ${type} after a later kind (canonical order is chunks, zero, file, parent runs)`);
    if (stage > this.stage) {
      this.lastAddr = -1;
      this.earlier = mergeRanges(this.earlier, this.current);
      this.current = [];
      this.cursor = 0;
    }
    this.stage = stage;
    return v;
  }

  private page(where: string, v: VmaHeader, start: number, pages: number): void {
    const ps = this.begin!.pageSize;
    const end = start + pages * ps;
    if (start % ps !== 0 || start < v.start || end > v.end || !Number.isSafeInteger(pages)) {
      this.fail(ErrorCodes.STREAM_ADDRESS, `${where}: page ${hex(start)} (+${pages}) is outside VMA ${v.index} ${hex(v.start)}-${hex(v.end)} or unaligned`, { address: hex(start) });
    }
    if (start <= this.lastAddr) this.fail(ErrorCodes.STREAM_ADDRESS, `${where}: page ${hex(start)} is not after ${hex(this.lastAddr)}`, { address: hex(start) });
    this.lastAddr = end - ps;
    // Ascending within a kind, so one forward cursor over the earlier kinds' ranges suffices.
    const e = this.earlier;
    while (this.cursor < e.length && e[this.cursor + 1]! <= start) this.cursor += 2;
    if (this.cursor < e.length && e[this.cursor]! < end) {
      this.fail(ErrorCodes.STREAM_ADDRESS, `${where}: page ${hex(Math.max(start, e[this.cursor]!))} of VMA ${v.index} was already given as another kind`, { address: hex(start) });
    }
    const c = this.current;
    if (c.length > 0 && c[c.length - 1] === start) c[c.length - 1] = end;
    else c.push(start, end);
  }

  private checkEnd(where: string, e: SnapshotEnd, seq: number): void {
    const c = this.counts;
    const mismatch =
      e.vmaCount !== this.vmaCount || e.dataPages !== c.dataPages || e.zeroPages !== c.zeroPages ||
      e.filePages !== c.filePages || e.parentPages !== c.parentPages || e.frameCount !== seq;
    if (mismatch) {
      this.fail(ErrorCodes.STREAM_DIGEST, `${where}: snapshot-end counts do not match the stream`, { announced: { ...e, digest: undefined }, seen: { ...c, vmaCount: this.vmaCount, frameCount: seq } });
    }
    const d = this.digest.digest();
    if (!timingSafeEqual(d, e.digest)) this.fail(ErrorCodes.STREAM_DIGEST, `${where}: stream digest mismatch`);
  }

  private fail(code: (typeof ErrorCodes)[keyof typeof ErrorCodes], message: string, details: Record<string, unknown> = {}): never {
    throw new PvError(code, message, { details: { snapshot: idToHex(this.snapshotId), ...details } });
  }
}

/** Merges two ascending, mutually disjoint lists of [start, end) pairs, joining ranges that touch. */
function mergeRanges(a: number[], b: number[]): number[] {
  if (a.length === 0) return b;
  if (b.length === 0) return a;
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const fromA = j >= b.length || (i < a.length && a[i]! < b[j]!);
    const s = fromA ? a[i]! : b[j]!;
    const e = fromA ? a[i + 1]! : b[j + 1]!;
    if (fromA) i += 2;
    else j += 2;
    if (out.length > 0 && out[out.length - 1] === s) out[out.length - 1] = e;
    else out.push(s, e);
  }
  return out;
}
