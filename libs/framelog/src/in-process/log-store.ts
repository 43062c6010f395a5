import { ErrorCodes, PvError } from '@pagevault/errors';
import type { OutboundFrame } from '../batching-frame-producer';
import type { FrameRecord } from '../frame-log';
import { Signal } from '../signal';

interface StoredRecord {
  key: string;
  value: Buffer;
}

interface StoredPartition {
  /** Offset of records[0]: records below it were committed by every group and dropped. */
  base: number;
  records: StoredRecord[];
  bytes: number;
}

/** A member of a group, as the group sees it. */
export interface GroupMember {
  readonly memberId: number;
}

/** A consumer group: members in join order, committed offsets, partitions with a batch in progress. */
export interface GroupState {
  readonly id: string;
  members: GroupMember[];
  /** Bumped on every join and leave; a member that sees a new generation re-reads its assignment. */
  generation: number;
  committed: Map<number, number>;
  busy: Set<number>;
}

/**
 * The partitions and consumer groups of one in-process log. `changed` fires on every append, commit,
 * membership change and end of batch; consumers wait on it.
 *
 * Memory bound: a record is retained until every group that ever joined has committed past it.
 */
export class LogStore {
  readonly changed = new Signal();
  private readonly parts: StoredPartition[];
  private readonly groups = new Map<string, GroupState>();

  constructor(readonly partitions: number) {
    this.parts = Array.from({ length: partitions }, () => ({ base: 0, records: [], bytes: 0 }));
  }

  append(frames: readonly OutboundFrame[]): void {
    for (const { key, value, partition } of frames) {
      const part = this.part(partition);
      part.records.push({ key, value });
      part.bytes += value.length;
    }
    this.changed.notify();
  }

  base(partition: number): number {
    return this.part(partition).base;
  }

  end(partition: number): number {
    const part = this.part(partition);
    return part.base + part.records.length;
  }

  /** Records from offset `from`, at least one, then up to maxBytes in total. */
  read(partition: number, from: number, maxBytes: number): FrameRecord[] {
    const part = this.part(partition);
    const out: FrameRecord[] = [];
    let bytes = 0;
    for (let i = Math.max(from, part.base) - part.base; i < part.records.length; i++) {
      const { key, value } = part.records[i];
      if (out.length > 0 && bytes + value.length > maxBytes) break;
      out.push({ key, value, partition, offset: String(part.base + i) });
      bytes += value.length;
    }
    return out;
  }

  retainedBytes(): number {
    return this.parts.reduce((n, p) => n + p.bytes, 0);
  }

  group(id: string): GroupState {
    let g = this.groups.get(id);
    if (!g) {
      g = { id, members: [], generation: 0, committed: new Map(), busy: new Set() };
      this.groups.set(id, g);
    }
    return g;
  }

  commit(group: GroupState, partition: number, nextOffset: number): void {
    const end = this.end(partition);
    if (nextOffset < this.base(partition) || nextOffset > end) {
      throw new PvError(
        ErrorCodes.INVALID_ARGUMENT,
        `cannot commit offset ${nextOffset} of partition ${partition} for group ${group.id}: the log holds offsets ${this.base(partition)}..${end}`,
        { details: { group: group.id, partition, offset: nextOffset } },
      );
    }
    group.committed.set(partition, nextOffset);
    this.truncate(partition);
    this.changed.notify();
  }

  private truncate(partition: number): void {
    let low = Infinity;
    for (const g of this.groups.values()) low = Math.min(low, g.committed.get(partition) ?? 0);
    const part = this.part(partition);
    const drop = Math.min(low - part.base, part.records.length);
    if (drop <= 0) return;
    for (const r of part.records.splice(0, drop)) part.bytes -= r.value.length;
    part.base += drop;
  }

  private part(partition: number): StoredPartition {
    const part = this.parts[partition];
    if (!part) {
      throw new PvError(
        ErrorCodes.INVALID_ARGUMENT,
        `partition ${partition} does not exist (the log has ${this.partitions})`,
      );
    }
    return part;
  }
}
