import type { LogEntry } from '@pagevault/framelog';
import { logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { kafkajsLogCreator } from './kafkajs-log';

describe('kafkajs logging', () => {
  const capture = (min: 'warn' | 'debug') => {
    const entries: LogEntry[] = [];
    const log = kafkajsLogCreator((e) => entries.push(e), min)(logLevel.DEBUG);
    const emit = (namespace: string, level: logLevel, message: string, extra = {}) =>
      log({ namespace, level, label: '', log: { timestamp: 't', logger: 'kafkajs', message, ...extra } });
    return { entries, emit };
  };

  it('goes to the sink with our level names, namespace and extra fields', () => {
    const { entries, emit } = capture('warn');
    emit('Consumer', logLevel.ERROR, 'Crash: boom', { groupId: 'g' });
    emit('Consumer', logLevel.INFO, 'joined');
    expect(entries).toEqual([
      { level: 'error', namespace: 'kafkajs.Consumer', message: 'Crash: boom', extra: { groupId: 'g' } },
    ]);
  });

  it('demotes per-response protocol errors to debug, retried sends and connections to warn, and drops the bounded-retries warning', () => {
    const { entries, emit } = capture('debug');
    emit('Connection', logLevel.ERROR, 'Response Metadata(key: 3, version: 6)', {
      error: 'UNKNOWN_TOPIC_OR_PARTITION',
    });
    emit(
      'Producer',
      logLevel.ERROR,
      'Failed to send messages: This server is not the leader for that topic-partition',
    );
    emit(
      'Producer',
      logLevel.WARN,
      'Limiting retries for the idempotent producer may invalidate EoS guarantees',
    );
    emit('Connection', logLevel.ERROR, 'Connection error: connect ECONNREFUSED 127.0.0.1:1');
    emit('BrokerPool', logLevel.ERROR, 'Failed to connect to seed broker, trying another broker from the list');
    expect(entries.map((e) => e.level)).toEqual(['debug', 'warn', 'warn', 'warn']);
    const quiet = capture('warn');
    quiet.emit('Connection', logLevel.ERROR, 'Response Metadata(key: 3, version: 6)');
    expect(quiet.entries).toEqual([]);
    // What stays an error: a failure kafkajs does not retry.
    quiet.emit('Consumer', logLevel.ERROR, 'Crash: KafkaJSNumberOfRetriesExceeded');
    expect(quiet.entries.map((e) => e.level)).toEqual(['error']);
  });
});
