import { ErrorCodes, isPvError } from '@pagevault/errors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Collector,
  frameIndex,
  freshKey,
  keysOnPartition,
  testFrame,
  testFrames,
  waitUntil,
} from './conformance-support';
import type { FrameLog, FrameProducer } from './frame-log';
import { partitionForKey } from './partition-for-key';
import { sleep } from './signal';

/** The helpers the suite uses, for adapter-specific tests. */
export { Collector, frameIndex, testFrame, testFrames, waitUntil } from './conformance-support';

/** One adapter instance under test, fresh for every test (for Kafka: a topic of its own). */
export interface FrameLogHarness {
  log: FrameLog;
  /** The partition count the log was created with. */
  partitions: number;
  /** Withholds acknowledgements from the log's producers until the returned function is called. */
  holdAcks(): () => void;
  /** Releases the adapter and deletes what open() created. */
  close(): Promise<void>;
}

export interface ConformanceOptions {
  /** How long to wait for records to arrive (Kafka group joins take seconds). Default 30 s. */
  waitMs?: number;
  /** How long "nothing happens" is watched for. Default 500 ms. */
  quietMs?: number;
  /** The adapter hands every frame back (FramesDone) once acknowledged. Default false: it may keep them. */
  handsBackAcknowledged?: boolean;
}

/** The frame log contract. Every adapter runs it: `describeFrameLogConformance('kafka', open)`. */
export function describeFrameLogConformance(
  adapter: string,
  open: () => Promise<FrameLogHarness>,
  options: ConformanceOptions = {},
): void {
  const waitMs = options.waitMs ?? 30_000;
  const quietMs = options.quietMs ?? 500;

  describe(`frame log conformance: ${adapter}`, () => {
    let h: FrameLogHarness;
    let opened: FrameLogHarness | undefined;
    let cleanups: Array<() => Promise<void>> = [];

    beforeEach(async () => {
      cleanups = [];
      h = opened = await open();
    });
    afterEach(async () => {
      for (const c of cleanups.reverse()) await c().catch(() => undefined);
      const last = opened;
      opened = undefined; // a failed open() must not close the previous test's harness twice
      await last?.close();
    });

    const producer = (maxInFlightBytes?: number): FrameProducer => {
      const p = h.log.producer(maxInFlightBytes === undefined ? {} : { maxInFlightBytes });
      cleanups.push(() => p.close());
      return p;
    };
    const consume = async (group: string, commitAfter?: ConstructorParameters<typeof Collector>[1], failOnce?: ConstructorParameters<typeof Collector>[2]) => {
      const c = new Collector(h.log.consumer(group), commitAfter, failOnce);
      cleanups.push(() => c.stop());
      return c.start();
    };
    const group = () => `pv-conformance-${freshKey().slice(0, 12)}`;
    const until = (cond: () => boolean, what: string) => waitUntil(cond, what, waitMs);

    it('delivers the frames of one key in the order they were sent, concurrent send() calls included', async () => {
      const key = freshKey();
      const p = producer();
      const sent = [testFrames(key, 0, 10), testFrames(key, 10, 10), testFrames(key, 20, 5, 4096)];
      await Promise.all(sent.map((frames) => p.send(key, frames)));
      await p.flush();
      const c = await consume(group());
      await until(() => c.ofKey(key).length >= 25, '25 records of one key');
      const got = c.ofKey(key);
      expect(got.map(frameIndex)).toEqual([...Array(25).keys()]);
      expect(got.map((r) => r.value)).toEqual(sent.flat());
      expect(c.violations).toEqual([]);
    });

    it('puts every record of one key on one partition, the one murmur2 of the key chooses', async () => {
      const keys = Array.from({ length: 8 }, freshKey);
      const p = producer();
      for (const key of keys) await p.send(key, testFrames(key, 0, 3));
      await p.flush();
      const c = await consume(group());
      await until(() => c.records.length >= 24, '24 records of 8 keys');
      for (const key of keys) {
        expect(new Set(c.ofKey(key).map((r) => r.partition))).toEqual(
          new Set([partitionForKey(key, h.partitions)]),
        );
      }
    });

    it('rejects a frame over maxFrameBytes with PV_FRAME_TOO_LARGE, queues nothing of that call, and carries a frame of exactly maxFrameBytes', async () => {
      const key = freshKey();
      const max = h.log.maxFrameBytes;
      const p = producer();
      const rejected = await p.send(key, [testFrame(key, 0), Buffer.alloc(max + 1)]).catch((e: unknown) => e);
      expect(isPvError(rejected, ErrorCodes.FRAME_TOO_LARGE)).toBe(true);
      await p.send(key, [testFrame(key, 1, max), testFrame(key, 2)]);
      await p.flush();
      const c = await consume(group());
      await until(() => c.ofKey(key).length >= 2, 'the largest frame and the one after it');
      expect(c.ofKey(key).map(frameIndex)).toEqual([1, 2]);
      expect(c.ofKey(key)[0]?.value.length).toBe(max);
    });

    it('delivers the headers given to send() on every record of that call, none on the others, beside a frame of maxFrameBytes', async () => {
      const key = freshKey();
      const p = producer();
      const headers = { 'pv-dlq-reason': 'r'.repeat(2048), 'pv-dlq-offset': '12345678901234567890' };
      await p.send(key, [testFrame(key, 0), testFrame(key, 1, h.log.maxFrameBytes)], undefined, headers);
      await p.send(key, [testFrame(key, 2)]);
      await p.flush();
      const c = await consume(group());
      await until(() => c.ofKey(key).length >= 3, 'three records, two with headers');
      expect(c.ofKey(key).map((r) => r.headers)).toEqual([headers, headers, undefined]);
      expect(c.ofKey(key).map(frameIndex)).toEqual([0, 1, 2]);
    });

    it('redelivers records nobody committed to the next consumer of the group after stop', async () => {
      const key = freshKey();
      const g = group();
      const p = producer();
      await p.send(key, testFrames(key, 0, 10));
      await p.flush();
      const first = await consume(g);
      await until(() => first.ofKey(key).length >= 10, 'first delivery');
      await first.stop();
      const second = await consume(g);
      await until(() => second.ofKey(key).length >= 10, 'redelivery');
      expect(second.ofKey(key).map((r) => r.offset)).toEqual(first.ofKey(key).map((r) => r.offset));
      expect(await second.consumer.committed()).toEqual(new Map());
    });

    it('reports each partition\'s end offset: the records written to it', async () => {
      const before = await h.log.endOffsets();
      expect([...before.keys()].sort()).toEqual(Array.from({ length: h.partitions }, (_, i) => i));
      const key = freshKey();
      const p = producer();
      await p.send(key, testFrames(key, 0, 7));
      await p.flush();
      const partition = partitionForKey(key, h.partitions);
      const after = await h.log.endOffsets();
      for (const [part, end] of after) expect(BigInt(end) - BigInt(before.get(part)!)).toBe(part === partition ? 7n : 0n);
    });

    it('does not redeliver committed records, and reports the committed offsets', async () => {
      const key = freshKey();
      const g = group();
      const p = producer();
      await p.send(key, testFrames(key, 0, 10));
      await p.flush();
      const first = await consume(g, (r) => frameIndex(r) <= 5);
      await until(() => first.ofKey(key).length >= 10, 'first delivery');
      const next = String(BigInt(first.ofKey(key)[5]?.offset ?? -2) + 1n);
      const partition = partitionForKey(key, h.partitions);
      expect(await first.consumer.committed()).toEqual(new Map([[partition, next]]));
      await first.stop();
      await p.send(key, testFrames(key, 10, 2));
      await p.flush();
      const second = await consume(g);
      await until(() => second.ofKey(key).length >= 6, 'delivery from the committed offset');
      expect(second.ofKey(key).map(frameIndex)).toEqual([6, 7, 8, 9, 10, 11]);
      expect(second.ofKey(key)[0]?.offset).toBe(next);
    });

    it('delivers a partition again from its committed offset after onBatch throws, records handled since included', async () => {
      const key = freshKey();
      const p = producer();
      await p.send(key, testFrames(key, 0, 10));
      await p.flush();
      // Commits past frame 2 only; throws on the batch that holds frame 12.
      const c = await consume(group(), (r) => frameIndex(r) <= 2, (r) => frameIndex(r) === 12);
      await until(() => c.ofKey(key).length >= 10, 'first delivery');
      await p.send(key, testFrames(key, 10, 5));
      await p.flush();
      await until(() => c.ofKey(key).length >= 10 + 12, 'delivery again from frame 3');
      await sleep(quietMs);
      expect(c.ofKey(key).map(frameIndex)).toEqual([...Array(10).keys(), ...Array.from({ length: 12 }, (_, i) => 3 + i)]);
      expect(c.violations).toEqual([]);
    });

    it('interleaves two keys on one partition in send order and delivers both', async () => {
      const [a, b] = keysOnPartition(h.partitions - 1, h.partitions, 2) as [string, string];
      const p = producer();
      for (let i = 0; i < 6; i++) {
        await p.send(a, [testFrame(a, i)]);
        await p.send(b, [testFrame(b, i)]);
      }
      await p.flush();
      const c = await consume(group());
      await until(() => c.records.length >= 12, '12 records of two keys');
      expect(c.records.map((r) => `${r.key === a ? 'a' : 'b'}${frameIndex(r)}`)).toEqual(
        [0, 1, 2, 3, 4, 5].flatMap((i) => [`a${i}`, `b${i}`]),
      );
      expect(new Set(c.records.map((r) => r.partition))).toEqual(new Set([h.partitions - 1]));
    });

    it('send() stays pending while the in-flight window is full and resolves once acknowledgements free it', async () => {
      const key = freshKey();
      const size = 1024;
      const p = producer(4 * size);
      const release = h.holdAcks();
      let accepted = false;
      try {
        await p.send(key, testFrames(key, 0, 4, size)); // fills the window exactly: accepted without an ack
        const fifth = p.send(key, [testFrame(key, 4, size)]).then(() => (accepted = true));
        await sleep(quietMs);
        expect(accepted).toBe(false);
        release();
        await fifth;
      } finally {
        release();
      }
      expect(accepted).toBe(true);
      await p.flush();
      const c = await consume(group());
      await until(() => c.ofKey(key).length >= 5, 'the five frames');
      expect(c.ofKey(key).map(frameIndex)).toEqual([0, 1, 2, 3, 4]);
    });

    it('flush() resolves only once every frame sent so far is acknowledged', async () => {
      const key = freshKey();
      const p = producer();
      await p.flush(); // nothing in flight: at once
      const release = h.holdAcks();
      let flushed = false;
      try {
        await p.send(key, testFrames(key, 0, 3));
        const flushing = p.flush().then(() => (flushed = true));
        await sleep(quietMs);
        expect(flushed).toBe(false);
        release();
        await flushing;
      } finally {
        release();
      }
      expect(flushed).toBe(true);
    });

    it('hands frames back (FramesDone) only once it needs them no more: refilling them changes nothing delivered', async () => {
      const key = freshKey();
      const p = producer();
      const sent = testFrames(key, 0, 6, 2048);
      const copies = sent.map((f) => Buffer.from(f));
      const handed: Buffer[] = [];
      const release = h.holdAcks();
      try {
        await p.send(key, sent.slice(0, 3), (fs) => handed.push(...fs.map((f) => f.fill(0xee))));
        await p.send(key, sent.slice(3), (fs) => handed.push(...fs.map((f) => f.fill(0xee))));
        await sleep(quietMs);
        if (options.handsBackAcknowledged) expect(handed).toEqual([]); // nothing acknowledged yet
      } finally {
        release();
      }
      await p.flush();
      if (options.handsBackAcknowledged) expect(handed.length).toBe(6);
      const c = await consume(group());
      await until(() => c.ofKey(key).length >= 6, '6 records');
      expect(c.ofKey(key).map((r) => r.value)).toEqual(copies);
    });

    it('delivers records produced after the consumer started, and reports its partitions to onAssign', async () => {
      const c = await consume(group());
      await until(() => c.assignments.length > 0, 'the first assignment');
      expect(c.assignments.at(-1)).toEqual([...Array(h.partitions).keys()]);
      const key = freshKey();
      const p = producer();
      await p.send(key, testFrames(key, 0, 3));
      await until(() => c.ofKey(key).length >= 3, 'records produced after start');
    });

    it('a paused consumer delivers nothing until resumed', async () => {
      const key = freshKey();
      const p = producer();
      const c = await consume(group());
      await p.send(key, [testFrame(key, 0)]);
      await until(() => c.ofKey(key).length >= 1, 'the first record');
      c.consumer.pause();
      await p.send(key, testFrames(key, 1, 3));
      await p.flush();
      await sleep(quietMs * 2);
      expect(c.ofKey(key).length).toBe(1);
      c.consumer.resume();
      await until(() => c.ofKey(key).length >= 4, 'the records after resume');
      expect(c.ofKey(key).map(frameIndex)).toEqual([0, 1, 2, 3]);
    });
  });
}
