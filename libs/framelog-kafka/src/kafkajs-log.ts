import type { LogLevel, LogSink } from '@pagevault/framelog';
import { logLevel as KafkaLogLevel, type logCreator } from 'kafkajs';

const toSink: Record<number, LogLevel> = {
  [KafkaLogLevel.ERROR]: 'error',
  [KafkaLogLevel.WARN]: 'warn',
  [KafkaLogLevel.INFO]: 'info',
  [KafkaLogLevel.DEBUG]: 'debug',
};

export const kafkaLogLevel: Record<LogLevel, KafkaLogLevel> = {
  error: KafkaLogLevel.ERROR,
  warn: KafkaLogLevel.WARN,
  info: KafkaLogLevel.INFO,
  debug: KafkaLogLevel.DEBUG,
};

/**
 * Sends kafkajs's log entries to our sink in place of its console logger, with two adjustments:
 * - kafkajs's Connection logs every error response at ERROR ("Response Metadata(key: 3, version: 6)"),
 *   including the ones the layer above retries or expects (UNKNOWN_TOPIC_OR_PARTITION while a new topic
 *   propagates, TOPIC_ALREADY_EXISTS from ensureTopic, NOT_LEADER right after creation). Those become
 *   debug; the producer's "Failed to send messages" before a retry, and each refused connection kafkajs
 *   retries (Connection "Connection error", BrokerPool "Failed to connect to seed broker": a dozen lines
 *   for one unreachable broker), become warn: a failure that is final reaches the caller as a rejected
 *   operation (a PvError) and is reported there.
 * - "Limiting retries for the idempotent producer may invalidate EoS guarantees" is dropped. We bound
 *   retries so a dead cluster fails the snapshot instead of hanging it, and a failed producer is never
 *   reused (the snapshot is aborted and sent again whole), so the duplicate it warns about cannot occur.
 */
function demoted(namespace: string, message: string): KafkaLogLevel | undefined {
  if (namespace === 'Connection' && message.startsWith('Response ')) return KafkaLogLevel.DEBUG;
  if (namespace === 'Producer' && message.startsWith('Failed to send messages')) return KafkaLogLevel.WARN;
  if (namespace === 'Connection' && message.startsWith('Connection error')) return KafkaLogLevel.WARN;
  if (namespace === 'BrokerPool' && message.startsWith('Failed to connect to seed broker')) return KafkaLogLevel.WARN;
  return undefined;
}

export function kafkajsLogCreator(sink: LogSink, minLevel: LogLevel): logCreator {
  return () =>
    ({ namespace, level: kafkaLevel, log }) => {
      const level = demoted(namespace, log.message) ?? kafkaLevel;
      if (level > kafkaLogLevel[minLevel]) return;
      const extra: Record<string, unknown> = { ...log };
      delete extra['timestamp']; // the sink stamps its own time
      delete extra['logger'];
      delete extra['message'];
      const message = log.message;
      if (message.startsWith('Limiting retries for the idempotent producer')) return;
      sink({ level: toSink[level] ?? 'info', namespace: `kafkajs.${namespace || 'client'}`, message, extra });
    };
}
