import { randomBytes } from 'node:crypto';
import type { FrameConsumer, FrameRecord } from './frame-log';
import { partitionForKey } from './partition-for-key';
import { sleep } from './signal';

/** A frame that names its key and index in its first bytes; the rest is random (incompressible). */
export function testFrame(key: string, index: number, size = 256): Buffer {
  const head = Buffer.from(`${key}/${index}/`);
  const frame = randomBytes(Math.max(size, head.length));
  head.copy(frame);
  return frame;
}

export function testFrames(key: string, from: number, count: number, size?: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => testFrame(key, from + i, size));
}

export function frameIndex(r: FrameRecord): number {
  const text = r.value.subarray(0, 128).toString('latin1');
  return Number(text.slice(r.key.length + 1, text.indexOf('/', r.key.length + 1)));
}

/** `count` fresh snapshot-like keys (hex) that murmur2 puts on `partition`. */
export function keysOnPartition(partition: number, partitions: number, count: number): string[] {
  const keys: string[] = [];
  while (keys.length < count) {
    const key = randomBytes(16).toString('hex');
    if (partitionForKey(key, partitions) === partition) keys.push(key);
  }
  return keys;
}

export function freshKey(): string {
  return randomBytes(16).toString('hex');
}

export async function waitUntil(cond: () => boolean, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * A consumer that records what it is given and checks, as it goes, the delivery contract: one
 * partition per batch, offsets increasing, no two batches of one partition at once.
 */
export class Collector {
  readonly records: FrameRecord[] = [];
  readonly assignments: number[][] = [];
  readonly violations: string[] = [];
  private readonly active = new Set<number>();

  /**
   * commitAfter: commit past the last record of each batch for which it returns true. failOnce: the
   * first batch holding a record for which it returns true throws (nothing of that batch is recorded).
   */
  constructor(
    readonly consumer: FrameConsumer,
    private readonly commitAfter?: (r: FrameRecord) => boolean,
    private failOnce?: (r: FrameRecord) => boolean,
  ) {}

  async start(): Promise<this> {
    await this.consumer.start({
      onAssign: (partitions) => {
        this.assignments.push([...partitions].sort((a, b) => a - b));
      },
      onBatch: async (batch, ctl) => {
        if (this.active.has(batch.partition))
          this.violations.push(`concurrent batches of partition ${batch.partition}`);
        this.active.add(batch.partition);
        try {
          let previous = -1n;
          for (const r of batch.records) {
            if (r.partition !== batch.partition)
              this.violations.push(`record of partition ${r.partition} in batch of ${batch.partition}`);
            if (BigInt(r.offset) <= previous)
              this.violations.push(`offset ${r.offset} after ${previous} in one batch`);
            previous = BigInt(r.offset);
          }
          if (this.failOnce && batch.records.some(this.failOnce)) {
            this.failOnce = undefined;
            throw new Error('test handler fails once');
          }
          // Commit before recording, so a test that saw the records also sees the commit.
          const last = this.commitAfter ? batch.records.filter(this.commitAfter).pop() : undefined;
          if (last) await ctl.commit(batch.partition, String(BigInt(last.offset) + 1n));
          this.records.push(...batch.records);
        } finally {
          this.active.delete(batch.partition);
        }
      },
    });
    return this;
  }

  ofKey(key: string): FrameRecord[] {
    return this.records.filter((r) => r.key === key);
  }

  async stop(): Promise<void> {
    await this.consumer.stop();
  }
}
