import { ErrorCodes, isPvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { KafkaFrameLog } from './kafka-frame-log';
import { toLogError } from './kafka-errors';

describe('Kafka failures', () => {
  it('an unreachable cluster is PV_LOG_UNAVAILABLE, retriable, and names the brokers', async () => {
    const log = new KafkaFrameLog({
      brokers: ['127.0.0.1:1', '127.0.0.1:2'],
      clientId: 'pv-test',
      topic: 't',
      partitions: 1,
      connectionTimeoutMs: 500,
      retries: 1,
      log: () => undefined,
    });
    const p = log.producer();
    await p.send('00ff', [Buffer.from('frame')]);
    const err = await p.flush().catch((e: unknown) => e);
    expect(isPvError(err, ErrorCodes.LOG_UNAVAILABLE)).toBe(true);
    expect(err).toMatchObject({ retriable: true, details: { brokers: ['127.0.0.1:1', '127.0.0.1:2'] } });
    expect((err as Error).message).toContain('127.0.0.1:1,127.0.0.1:2');
    await expect(p.send('00ff', [Buffer.from('later')])).rejects.toBe(err);
    await expect(log.ensureTopic()).rejects.toMatchObject({
      code: ErrorCodes.LOG_UNAVAILABLE,
      retriable: true,
    });
    await log.close();
  });

  it("keeps kafkajs's retriable flag for protocol errors and the error type in details", () => {
    const protocol = Object.assign(
      new Error('The request included a message larger than the max message size'),
      {
        name: 'KafkaJSProtocolError',
        type: 'MESSAGE_TOO_LARGE',
        retriable: false,
      },
    );
    const e = toLogError(protocol, 'producing', ['b:9092']);
    expect(e).toMatchObject({
      code: ErrorCodes.LOG_UNAVAILABLE,
      retriable: false,
      details: { kafkaError: 'MESSAGE_TOO_LARGE' },
    });
  });

  it('refuses options that cannot work, naming the option', () => {
    const base = { brokers: ['127.0.0.1:9092'], clientId: 'c', topic: 't', partitions: 4 };
    expect(() => new KafkaFrameLog({ ...base, brokers: ['nohost'] })).toThrow(/host:port/);
    expect(() => new KafkaFrameLog({ ...base, partitions: 0 })).toThrow(/partitions/);
    expect(() => new KafkaFrameLog({ ...base, maxFrameBytes: 2_000_000 })).toThrow(/maxBatchBytes/);
  });
});
