import { ErrorCodes, isPvError, PvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import {
  BatchingFrameProducer,
  type BatchingFrameProducerOptions,
  type OutboundFrame,
} from './batching-frame-producer';

/** A producer whose transmit() calls wait until the test acknowledges them. */
function harness(patch: Partial<BatchingFrameProducerOptions> = {}) {
  const calls: Array<{ frames: OutboundFrame[]; ack: () => void; fail: (e: Error) => void }> = [];
  let concurrent = 0;
  let maxConcurrent = 0;
  let disconnects = 0;
  const producer = new BatchingFrameProducer({
    maxFrameBytes: 1000,
    maxInFlightBytes: 10_000,
    maxBatchBytes: 350,
    maxRequestBytes: 700,
    partitionOf: (key) => (key === 'a' ? 0 : 1),
    transmit: (frames) => {
      maxConcurrent = Math.max(maxConcurrent, ++concurrent);
      return new Promise<void>((resolve, reject) => {
        const done = () => concurrent--;
        calls.push({ frames, ack: () => (done(), resolve()), fail: (e) => (done(), reject(e)) });
      });
    },
    disconnect: async () => void disconnects++,
    ...patch,
  });
  const settle = () => new Promise((r) => setImmediate(r));
  const next = () => {
    const call = calls.shift();
    if (!call) throw new Error('no transmit() call is waiting');
    return call;
  };
  return {
    producer,
    calls,
    next,
    settle,
    maxConcurrent: () => maxConcurrent,
    disconnects: () => disconnects,
  };
}

const frames = (n: number, size = 100) => Array.from({ length: n }, (_, i) => Buffer.alloc(size, i));

describe('BatchingFrameProducer', () => {
  it('sends queued frames in as few transmit() calls as the per-partition and per-request limits allow, one call at a time', async () => {
    const h = harness();
    await h.producer.send('a', frames(10)); // cost 101 each: 3 per partition batch of 350
    await h.producer.send('b', frames(4));
    const sizes: number[][] = [];
    while (h.calls.length > 0) {
      const call = h.next();
      sizes.push([
        call.frames.filter((f) => f.key === 'a').length,
        call.frames.filter((f) => f.key === 'b').length,
      ]);
      call.ack();
      await h.settle();
    }
    expect(sizes).toEqual([
      [3, 0],
      [3, 0],
      [3, 0],
      [1, 3],
      [0, 1],
    ]);
    expect(h.maxConcurrent()).toBe(1);
    await h.producer.flush();
  });

  it('accepts a frame larger than the whole window when nothing else is in flight, and holds the next one back', async () => {
    const h = harness({ maxInFlightBytes: 50 });
    await h.producer.send('a', frames(1, 100));
    let second = false;
    const pending = h.producer.send('a', frames(1, 10)).then(() => (second = true));
    await h.settle();
    expect(second).toBe(false);
    h.next().ack();
    await pending;
    expect(h.producer.inFlightBytes).toBe(10);
  });

  it('after a delivery error, flush() and every later send() reject with that first error and nothing more is transmitted', async () => {
    const h = harness({ maxInFlightBytes: 150 });
    await h.producer.send('a', frames(1));
    const blocked = h.producer.send('a', frames(3)).catch((e: unknown) => e);
    await h.settle();
    const boom = new PvError(ErrorCodes.LOG_UNAVAILABLE, 'broker gone', { retriable: true });
    h.next().fail(boom);
    expect(await blocked).toBe(boom);
    await expect(h.producer.flush()).rejects.toBe(boom);
    await expect(h.producer.send('b', frames(1))).rejects.toBe(boom);
    await h.settle();
    expect(h.calls).toHaveLength(0);
  });

  it('close() flushes, disconnects once, and refuses later sends', async () => {
    const h = harness();
    await h.producer.send('a', frames(2));
    const closing = h.producer.close();
    await h.settle();
    expect(h.disconnects()).toBe(0);
    h.next().ack();
    await closing;
    await h.producer.close();
    expect(h.disconnects()).toBe(1);
    const e = await h.producer.send('a', frames(1)).catch((err: unknown) => err);
    expect(isPvError(e, ErrorCodes.INVALID_ARGUMENT)).toBe(true);
  });

  it('refuses an empty key and a frame that is not a Buffer, before queueing anything', async () => {
    const h = harness();
    await expect(h.producer.send('', frames(1))).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    await expect(h.producer.send('a', [Buffer.alloc(1), 'x' as unknown as Buffer])).rejects.toMatchObject({
      code: ErrorCodes.INVALID_ARGUMENT,
      message: expect.stringContaining('frame 1 of snapshot a'),
    });
    await h.settle();
    expect(h.calls).toHaveLength(0);
  });
});
