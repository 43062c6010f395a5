import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Collector, frameIndex, testFrames, waitUntil } from '@pagevault/framelog/conformance';
import { SpoolingFrameProducer } from '@pagevault/framelog';
import { KafkaFrameLog } from '@pagevault/framelog-kafka';
import { describe, expect, it } from 'vitest';
import { deleteTopic, kafkaBrokers, requireKafka, uniqueTopic } from './kafka-env';
import { pausableSockets } from './pausable-sockets';

describe('a spooling producer in front of the real Kafka broker', () => {
  it('takes every frame while the broker is unreachable, then delivers them all in order, leaving no file behind', async () => {
    await requireKafka();
    const topic = uniqueTopic('spool');
    const dir = mkdtempSync(join(tmpdir(), 'pv-it-spool-'));
    const sockets = pausableSockets();
    const log = new KafkaFrameLog({ brokers: kafkaBrokers, clientId: 'pv-it-spool', topic, partitions: 2, socketFactory: sockets.socketFactory });
    try {
      await log.ensureTopic();
      const p = new SpoolingFrameProducer(log.producer({ maxInFlightBytes: 256 * 1024 }), log.maxFrameBytes, { dir, memoryBytes: 1 << 20 });
      const release = sockets.hold(); // the broker answers nothing: kafkajs' window fills and stays full
      const frames = { a: testFrames('a', 0, 48, 64 * 1024), b: testFrames('b', 0, 48, 64 * 1024) };
      for (let i = 0; i < 48; i += 8) {
        await p.send('a', frames.a.slice(i, i + 8));
        await p.send('b', frames.b.slice(i, i + 8));
      }
      // All 6 MiB were accepted with the broker silent: most of it waits in the spool file.
      expect(p.spooledBytes).toBeGreaterThan(4 << 20);
      expect(readdirSync(dir)).toEqual([]);
      release();
      await p.close();
      expect(p.spooledBytes).toBe(0);
      const c = await new Collector(log.consumer(`g-${topic}`)).start();
      try {
        await waitUntil(() => c.records.length === 96, '96 records', 60_000);
        for (const key of ['a', 'b'] as const) {
          const got = c.records.filter((r) => r.key === key);
          expect(got.map(frameIndex)).toEqual(Array.from({ length: 48 }, (_, i) => i));
          expect(got.every((r) => r.value.equals(frames[key][frameIndex(r)]!))).toBe(true);
        }
      } finally {
        await c.stop();
      }
    } finally {
      await log.close();
      await deleteTopic(topic).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it('rides out a broker that refuses connections for 15 s (a restart), with the default retries: every frame delivered', async () => {
    await requireKafka();
    const topic = uniqueTopic('refuse');
    const sockets = pausableSockets();
    const log = new KafkaFrameLog({ brokers: kafkaBrokers, clientId: 'pv-it-refuse', topic, partitions: 1, socketFactory: sockets.socketFactory, log: () => undefined });
    try {
      await log.ensureTopic();
      const p = log.producer();
      const frames = testFrames('r', 0, 16, 16 * 1024);
      await p.send('r', frames.slice(0, 8));
      await p.flush();
      const restart = sockets.refuse();
      const t0 = Date.now();
      const sent = p.send('r', frames.slice(8)).then(() => p.flush());
      setTimeout(restart, 15_000);
      await sent; // PV_LOG_UNAVAILABLE after ~10 s when the client's connection retries were 5 of the producer's 8
      expect(Date.now() - t0).toBeGreaterThanOrEqual(14_000);
      await p.close();
      const c = await new Collector(log.consumer(`g-${topic}`)).start();
      try {
        await waitUntil(() => c.records.length === 16, '16 records', 60_000);
        expect(c.records.map(frameIndex)).toEqual(Array.from({ length: 16 }, (_, i) => i));
      } finally {
        await c.stop();
      }
    } finally {
      await log.close();
      await deleteTopic(topic).catch(() => undefined);
    }
  }, 120_000);
});
