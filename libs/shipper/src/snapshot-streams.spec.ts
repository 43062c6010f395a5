import { InProcessFrameLog } from '@pagevault/framelog';
import { describe, expect, it } from 'vitest';
import { newSnapshotId } from '@pagevault/format';
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
