import { InProcessFrameLog } from '@pagevault/framelog';
import { describe, expect, it } from 'vitest';
import { decodeFrame, newSnapshotId } from '@pagevault/format';
import { SnapshotStreams } from './snapshot-streams';

describe('SnapshotStreams progress', () => {
  it('says capturing while the capture runs, with the frames written so far, then shipping, then done', async () => {
    const log = new InProcessFrameLog({ partitions: 1 });
    const producer = log.producer();
    const streams = new SnapshotStreams(producer, log.maxFrameBytes);
    expect(streams.phase).toBe('idle');
    const seen: string[] = [];
    const s = streams.open(newSnapshotId());
    const flush = producer.flush.bind(producer);
    producer.flush = async () => {
      seen.push(`${streams.phase} at flush`);
      await flush();
    };
    await streams.ship(async () => {
      seen.push(streams.phase);
      s.writer.begin({ pageSize: 4096, pid: 1, startTimeMs: 1, mode: 0, consistency: 0, tenant: 't', host: 'h', cmdline: '' });
      await s.drain();
      expect(streams.frames).toBe(1);
      expect(streams.bytes).toBeGreaterThan(0);
      s.writer.end();
    });
    expect(seen).toEqual(['capturing', 'shipping at flush']);
    expect(streams.phase).toBe('done');
    expect(streams.frames).toBe(2);
    await producer.close();
  });

  it('is done after a failed capture too', async () => {
    const log = new InProcessFrameLog({ partitions: 1 });
    const producer = log.producer();
    const streams = new SnapshotStreams(producer, log.maxFrameBytes);
    await expect(streams.ship(async () => {
      throw new Error('target gone');
    })).rejects.toThrow('target gone');
    expect(streams.phase).toBe('done');
    await producer.close();
  });
});

describe('SnapshotStreams sends', () => {
  const begin = { pageSize: 4096, pid: 1, startTimeMs: 1, mode: 0, consistency: 0, tenant: 't', host: 'h', cmdline: '' };

  it('gathers small frames until half a MiB is queued, then sends them in one go; the rest at the end', async () => {
    const log = new InProcessFrameLog({ partitions: 1 });
    const producer = log.producer();
    const sends: number[] = [];
    const send = producer.send.bind(producer);
    producer.send = (key, frames, done) => (sends.push(frames.length), send(key, frames, done));
    const streams = new SnapshotStreams(producer, log.maxFrameBytes);
    const s = streams.open(newSnapshotId());
    await streams.ship(async () => {
      s.writer.begin(begin);
      // A heap's small VMAs: a header, three pages and an end each, drained after each.
      for (let v = 0; v < 60; v++) {
        s.writer.beginVma({ start: 0x100000 * (v + 1), end: 0x100000 * (v + 1) + 0x3000, prot: 3, flags: 0, pgoff: 0, kind: 1, dev: '', inode: 0, path: '', vmFlags: '', reason: '', sharedKey: '' });
        s.writer.addPages([0, 1, 2].map((k) => 0x100000 * (v + 1) + k * 4096), Buffer.alloc(3 * 4096, v), 0, 3);
        s.writer.endVma();
        await s.drain();
      }
      s.writer.end();
    });
    // ~12.4 KiB a VMA: a send every ~42 VMAs instead of 60 sends, and the rest with the end.
    expect(sends.length).toBe(2);
    expect(sends.reduce((a, b) => a + b, 0)).toBe(streams.frames);
    await producer.close();
  });

  it('sends an earlier stream of the same key whole before a later one sends anything', async () => {
    const log = new InProcessFrameLog({ partitions: 1 });
    const producer = log.producer();
    const order: string[] = [];
    const send = producer.send.bind(producer);
    const streams = new SnapshotStreams(producer, log.maxFrameBytes);
    const a = streams.open(newSnapshotId(), 'round');
    const b = streams.open(newSnapshotId(), 'round');
    producer.send = (key, frames, done) => (order.push(...frames.map((f) => (Buffer.from(decodeFrame(f, log.maxFrameBytes).snapshotId).toString('hex') === a.snapshotId ? 'a' : 'b'))), send(key, frames, done));
    a.writer.begin(begin);
    a.writer.end(); // a small remainder, below the threshold: not sent by a's own drain
    await a.drain();
    expect(order).toEqual([]);
    b.writer.begin(begin);
    await b.drain(); // b's drain sends a first, whole; b itself waits for more
    expect(order).toEqual(['a', 'a']);
    await streams.flush();
    expect(order).toEqual(['a', 'a', 'b']);
    await producer.close();
  });
});
