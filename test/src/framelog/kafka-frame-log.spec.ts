import { ErrorCodes } from '@pagevault/errors';
import { describeFrameLogConformance } from '@pagevault/framelog/conformance';
import { KafkaFrameLog, type KafkaFrameLogOptions } from '@pagevault/framelog-kafka';
import { describe, expect, it } from 'vitest';
import { deleteTopic, kafkaBrokers, requireKafka, uniqueTopic } from './kafka-env';
import { pausableSockets } from './pausable-sockets';

const PARTITIONS = 3;
let n = 0;

function kafkaLog(topic: string, patch: Partial<KafkaFrameLogOptions> = {}): KafkaFrameLog {
  return new KafkaFrameLog({
    brokers: kafkaBrokers,
    clientId: 'pv-it-framelog',
    topic,
    partitions: PARTITIONS,
    ...patch,
  });
}

// Every test gets a topic of its own (created by ensureTopic, deleted after) and the adapter's defaults,
// so the 1 MiB − 4 KiB frame goes through the broker's default max.message.bytes.
describeFrameLogConformance(`KafkaFrameLog on ${kafkaBrokers.join(',')}`, async () => {
  await requireKafka();
  const topic = uniqueTopic(String(n++));
  const sockets = pausableSockets();
  const log = kafkaLog(topic, { socketFactory: sockets.socketFactory });
  try {
    await log.ensureTopic();
  } catch (e) {
    await log.close();
    await deleteTopic(topic).catch(() => undefined);
    throw e;
  }
  return {
    log,
    partitions: PARTITIONS,
    holdAcks: sockets.hold,
    close: async () => {
      await log.close();
      await deleteTopic(topic);
    },
  };
}, { handsBackAcknowledged: true });

describe('KafkaFrameLog.ensureTopic on a real broker', () => {
  it('creates the topic once and accepts it on the next call', async () => {
    await requireKafka();
    const topic = uniqueTopic('ensure');
    const log = kafkaLog(topic);
    try {
      await log.ensureTopic();
      await log.ensureTopic();
    } finally {
      await log.close();
      await deleteTopic(topic);
    }
  });

  it('refuses a topic that exists with another partition count, naming both counts', async () => {
    await requireKafka();
    const topic = uniqueTopic('count');
    const two = kafkaLog(topic, { partitions: 2 });
    const three = kafkaLog(topic);
    try {
      await two.ensureTopic();
      const e = await three.ensureTopic().catch((err: unknown) => err);
      expect(e).toMatchObject({ code: ErrorCodes.CONFIG_INVALID });
      expect((e as Error).message).toMatch(new RegExp(`${topic} has 2 partitions but 3 are configured`));
    } finally {
      await Promise.all([two.close(), three.close()]);
      await deleteTopic(topic);
    }
  });
});
