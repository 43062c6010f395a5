import { randomBytes } from 'node:crypto';
import { Kafka, logLevel } from 'kafkajs';

/** The broker under test, from the same variable as scripts/stack-env.sh (and its default). */
export const kafkaBrokers = (process.env.PV_KAFKA_BROKERS || '127.0.0.1:9092')
  .split(',')
  .map((b) => b.trim());

/** A topic name no other run uses: pv-it-framelog-<time>-<random>-<label>. */
export function uniqueTopic(label: string): string {
  return `pv-it-framelog-${Date.now()}-${randomBytes(3).toString('hex')}-${label}`;
}

/** A bare kafkajs admin for set-up and clean-up (not the code under test). */
export function testAdmin() {
  return new Kafka({
    clientId: 'pv-it-admin',
    brokers: kafkaBrokers,
    connectionTimeout: 3_000,
    logLevel: logLevel.NOTHING,
    retry: { retries: 2 },
  }).admin();
}

let reachable: Promise<void> | undefined;

/**
 * Fails loudly when the broker is not there: an integration test that quietly skips proves nothing.
 */
export function requireKafka(): Promise<void> {
  reachable ??= (async () => {
    const admin = testAdmin();
    try {
      await admin.connect();
      await admin.listTopics();
    } catch (e) {
      throw new Error(
        `The Kafka broker for the integration tests is not reachable at ${kafkaBrokers.join(',')}: ${(e as Error).message}\n` +
          '  Start the local stack with `npm run stack:start` (deploy/local/start.sh), or point PV_KAFKA_BROKERS at a running Kafka.',
        { cause: e },
      );
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  })();
  return reachable;
}

export async function deleteTopic(topic: string): Promise<void> {
  const admin = testAdmin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 });
  } finally {
    await admin.disconnect();
  }
}
