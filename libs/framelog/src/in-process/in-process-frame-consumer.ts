import { ErrorCodes, PvError } from '@pagevault/errors';
import type { BatchControl, FrameConsumer, FrameConsumerHandlers } from '../frame-log';
import type { LogSink } from '../log-sink';
import { sleep } from '../signal';
import type { GroupMember, GroupState, LogStore } from './log-store';

let nextMemberId = 1;

export interface InProcessConsumerOptions {
  maxBatchBytes: number;
  retryBackoffMs: number;
  log: LogSink;
}

/**
 * A member of an in-process consumer group. Partition p goes to the member at index p % members in join
 * order; every join or leave is a rebalance after which each member restarts its partitions from the
 * committed offsets, as a Kafka consumer does after an eager rebalance.
 */
export class InProcessFrameConsumer implements FrameConsumer, GroupMember {
  readonly memberId = nextMemberId++;
  private running = false;
  private paused = false;
  private loop: Promise<void> | undefined;
  private generation = -1;
  private assigned: number[] = [];
  private readonly positions = new Map<number, number>();
  private cursor = 0;

  constructor(
    private readonly store: LogStore,
    private readonly group: GroupState,
    private readonly opts: InProcessConsumerOptions,
  ) {}

  async start(h: FrameConsumerHandlers): Promise<void> {
    if (this.running || this.loop)
      throw new PvError(ErrorCodes.INVALID_ARGUMENT, `consumer of group ${this.group.id} already started`);
    this.running = true;
    this.join(1);
    this.loop = this.run(h);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.store.changed.notify();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.store.changed.notify();
    await this.loop;
    this.join(-1);
  }

  async committed(): Promise<Map<number, string>> {
    return new Map([...this.group.committed].map(([p, offset]) => [p, String(offset)]));
  }

  private join(direction: 1 | -1): void {
    const g = this.group;
    g.members = direction > 0 ? [...g.members, this] : g.members.filter((m) => m !== this);
    g.generation++;
    this.store.changed.notify();
  }

  private async run(h: FrameConsumerHandlers): Promise<void> {
    while (this.running) {
      const seen = this.store.changed.version;
      if (this.group.generation !== this.generation) {
        await this.reassign(h);
        continue;
      }
      const partition = this.paused ? undefined : this.pick();
      if (partition === undefined) await this.store.changed.changedSince(seen);
      else await this.deliver(h, partition);
    }
  }

  private async reassign(h: FrameConsumerHandlers): Promise<void> {
    const g = this.group;
    this.generation = g.generation;
    const index = g.members.indexOf(this);
    this.assigned = [];
    for (let p = index; p < this.store.partitions; p += g.members.length) this.assigned.push(p);
    this.positions.clear();
    for (const p of this.assigned) this.positions.set(p, g.committed.get(p) ?? this.store.base(p));
    await h.onAssign?.([...this.assigned]);
  }

  /** The next assigned partition, round robin, with records to read and no batch in progress. */
  private pick(): number | undefined {
    for (let i = 0; i < this.assigned.length; i++) {
      const p = this.assigned[(this.cursor + i) % this.assigned.length];
      if (!this.group.busy.has(p) && this.position(p) < this.store.end(p)) {
        this.cursor = (this.cursor + i + 1) % this.assigned.length;
        return p;
      }
    }
    return undefined;
  }

  private async deliver(h: FrameConsumerHandlers, partition: number): Promise<void> {
    const g = this.group;
    const from = this.position(partition);
    const records = this.store.read(partition, from, this.opts.maxBatchBytes);
    const generation = g.generation;
    const ctl: BatchControl = {
      commit: async (p, nextOffset) => this.commit(generation, p, nextOffset),
      heartbeat: async () => undefined,
      isStale: () => !this.running || g.generation !== generation,
    };
    g.busy.add(partition);
    try {
      await h.onBatch({ partition, records }, ctl);
      this.positions.set(partition, from + records.length);
    } catch (e) {
      // As kafkajs restarts a consumer whose handler threw: back to the committed offset, retry later.
      this.opts.log({
        level: 'error',
        namespace: 'framelog.in-process',
        message: `onBatch failed for partition ${partition} of group ${g.id}; redelivering from the committed offset`,
        extra: {
          group: g.id,
          partition,
          offset: String(from),
          error: e instanceof Error ? e.message : String(e),
        },
      });
      this.positions.set(partition, g.committed.get(partition) ?? this.store.base(partition));
      await sleep(this.opts.retryBackoffMs);
    } finally {
      g.busy.delete(partition);
      this.store.changed.notify();
    }
  }

  private position(partition: number): number {
    return this.positions.get(partition) ?? this.group.committed.get(partition) ?? this.store.base(partition);
  }

  private async commit(generation: number, partition: number, nextOffset: string): Promise<void> {
    const g = this.group;
    if (g.generation !== generation || !g.members.includes(this)) {
      throw new PvError(
        ErrorCodes.LOG_UNAVAILABLE,
        `cannot commit offset ${nextOffset} of partition ${partition} for group ${g.id}: the group rebalanced since the batch was delivered`,
        { retriable: true, details: { group: g.id, partition, offset: nextOffset } },
      );
    }
    if (!/^\d+$/.test(nextOffset)) {
      throw new PvError(
        ErrorCodes.INVALID_ARGUMENT,
        `offset to commit must be a decimal string, got "${nextOffset}"`,
      );
    }
    this.store.commit(g, partition, Number(nextOffset));
  }
}
