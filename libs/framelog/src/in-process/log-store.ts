import { closeSync, ftruncateSync, mkdirSync, openSync, readSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { writeFullyAtSync } from '@pagevault/format';
import type { OutboundFrame } from '../batching-frame-producer';
import type { FrameRecord, RecordHeaders } from '../frame-log';
import { localFileError } from '../local-file-error';
import { Signal } from '../signal';

interface StoredRecord {
  key: string;
  /** The bytes, or undefined when they were spilled to the partition's file at `at`. */
  value: Buffer | undefined;
  at: number;
  length: number;
  /** Kept in memory even when the bytes are spilled (a dead letter's few hundred bytes). */
  headers: RecordHeaders | undefined;
}

interface StoredPartition {
  /** Offset of records[0]: records below it were committed by every group and dropped. */
  base: number;
  records: StoredRecord[];
  bytes: number;
  /** Bytes of retained records held in memory (the rest are in the spill file). */
  memBytes: number;
  /** Spill file (unlinked at creation: nothing is left behind, whatever ends the process), and its end. */
  fd: number;
  fileEnd: number;
  /** Retained records whose bytes are in the spill file. */
  spilled: number;
}

export interface LogStoreOptions {
  /**
   * Retained record bytes kept in memory, over all partitions; beyond it records are appended to a spill
   * file per partition and read back from it. Default: unbounded (no spill).
   */
  memoryBytes?: number;
  /** Directory for spill files (default: the OS temp directory). */
  spillDir?: string;
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

  private memBytes = 0;
  private readonly memoryBytes: number;
  private readonly spillDir: string;

  constructor(
    readonly partitions: number,
    opts: LogStoreOptions = {},
  ) {
    this.parts = Array.from({ length: partitions }, () => ({ base: 0, records: [], bytes: 0, memBytes: 0, fd: -1, fileEnd: 0, spilled: 0 }));
    this.memoryBytes = opts.memoryBytes ?? Infinity;
    this.spillDir = opts.spillDir ?? tmpdir();
  }

  /**
   * Appends frames; past the memory budget their bytes go to the partition's spill file instead, and a
   * spilled frame is handed back to its sender's `done`. Frames kept in memory are the log's.
   */
  append(frames: readonly OutboundFrame[]): void {
    for (const { key, value, partition, done, headers } of frames) {
      const part = this.part(partition);
      if (this.memBytes + value.length <= this.memoryBytes) {
        part.records.push({ key, value, at: -1, length: value.length, headers });
        part.memBytes += value.length;
        this.memBytes += value.length;
      } else {
        part.records.push({ key, value: undefined, at: this.spill(part, partition, value), length: value.length, headers });
        part.spilled++;
        done?.([value]); // written: the sender may fill it again
      }
      part.bytes += value.length;
    }
    this.changed.notify();
  }

  /** Bytes of retained records held in memory (at most the memory budget, plus one record). */
  memoryRetainedBytes(): number {
    return this.memBytes;
  }

  /** Closes the spill files (their space is freed: they were unlinked when created). */
  close(): void {
    for (const p of this.parts) {
      if (p.fd >= 0) closeSync(p.fd);
      p.fd = -1;
    }
  }

  private spill(part: StoredPartition, partition: number, value: Buffer): number {
    try {
      if (part.fd < 0) {
        mkdirSync(this.spillDir, { recursive: true });
        const path = join(this.spillDir, `pagevault-log-${process.pid}-${partition}-${Date.now().toString(36)}.spill`);
        part.fd = openSync(path, 'wx+', 0o600);
        unlinkSync(path);
        part.fileEnd = 0;
      }
      const at = part.fileEnd;
      writeFullyAtSync(part.fd, value, at);
      part.fileEnd += value.length;
      return at;
    } catch (e) {
      throw localFileError(e, 'embedded frame log (spill)', this.spillDir, 'write');
    }
  }

  private value(part: StoredPartition, r: StoredRecord): Buffer {
    if (r.value) return r.value;
    const b = Buffer.allocUnsafe(r.length);
    try {
      for (let done = 0; done < r.length; ) {
        const got = readSync(part.fd, b, done, r.length - done, r.at + done);
        if (got === 0) throw new Error(`spill file ends at ${r.at + done}, record needs ${r.at + r.length}`);
        done += got;
      }
    } catch (e) {
      throw localFileError(e, 'embedded frame log (spill)', this.spillDir, 'read');
    }
    return b;
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
      const r = part.records[i]!;
      if (out.length > 0 && bytes + r.length > maxBytes) break;
      out.push({ key: r.key, value: this.value(part, r), partition, offset: String(part.base + i), headers: r.headers });
      bytes += r.length;
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
    for (const r of part.records.splice(0, drop)) {
      part.bytes -= r.length;
      if (r.value) {
        part.memBytes -= r.length;
        this.memBytes -= r.length;
      } else part.spilled--;
    }
    part.base += drop;
    // Every spilled record of the partition is gone: the file starts over (its space is given back).
    if (part.fd >= 0 && part.spilled === 0 && part.fileEnd > 0) {
      try {
        ftruncateSync(part.fd, 0);
      } catch (e) {
        throw localFileError(e, 'embedded frame log (spill)', this.spillDir, 'truncate');
      }
      part.fileEnd = 0;
    }
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
