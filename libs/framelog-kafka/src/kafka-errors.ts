import { ErrorCodes, PvError } from '@pagevault/errors';

/** kafkajs errors that mean "the cluster could not be reached or did not answer in time". */
const UNREACHABLE = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSMetadataNotLoaded',
  'KafkaJSTopicMetadataNotLoaded',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSLockTimeout',
]);

interface KafkaJsLike {
  name?: string;
  message?: string;
  retriable?: boolean;
  type?: string;
  cause?: unknown;
  originalError?: unknown;
}

function chain(e: unknown): KafkaJsLike[] {
  const out: KafkaJsLike[] = [];
  for (let cur = e; cur && typeof cur === 'object' && out.length < 8;) {
    const err = cur as KafkaJsLike;
    out.push(err);
    cur = err.cause ?? err.originalError;
  }
  return out;
}

/**
 * Maps a kafkajs failure to PV_LOG_UNAVAILABLE, naming the operation and the brokers. Unreachable
 * brokers are retriable; otherwise kafkajs's own `retriable` flag is kept.
 */
export function toLogError(
  e: unknown,
  operation: string,
  brokers: readonly string[],
  details: Record<string, unknown> = {},
): PvError {
  if (e instanceof PvError) return e;
  const errs = chain(e);
  const root = errs[errs.length - 1] ?? {};
  const unreachable = errs.some((x) => x.name !== undefined && UNREACHABLE.has(x.name));
  const why = [...new Set(errs.map((x) => x.message).filter(Boolean))].join(': ') || String(e);
  const message = unreachable
    ? `${operation}: Kafka brokers ${brokers.join(',')} unreachable: ${why}`
    : `${operation} failed on Kafka (brokers ${brokers.join(',')}): ${why}`;
  return new PvError(ErrorCodes.LOG_UNAVAILABLE, message, {
    retriable: unreachable || (errs[0]?.retriable ?? false),
    cause: e,
    details: { brokers: [...brokers], kafkaError: root.type ?? root.name, ...details },
  });
}
