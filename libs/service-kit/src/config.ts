import { ErrorCodes, PvError } from '@pagevault/errors';

type Kind = 'string' | 'int' | 'list';
interface Field<K extends Kind> {
  kind: K;
  default?: string;
  required?: boolean;
  secret?: boolean;
  help: string;
}
type Value<K> = K extends 'int' ? number : K extends 'list' ? string[] : string;
export type ConfigSpec = Record<string, Field<Kind>>;
export type Config<S extends ConfigSpec> = { [K in keyof S]: Value<S[K]['kind']> };

/**
 * Reads and validates an app's configuration from the environment once, at start-up, and fails with one
 * message naming every missing or malformed variable. Libraries never read process.env themselves.
 */
export function loadConfig<S extends ConfigSpec>(spec: S, env: NodeJS.ProcessEnv = process.env): Config<S> {
  const out: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [name, f] of Object.entries(spec)) {
    const raw = env[name] ?? f.default;
    if (raw === undefined || raw === '') {
      if (f.required) problems.push(`${name} is required (${f.help})`);
      out[name] = f.kind === 'list' ? [] : f.kind === 'int' ? 0 : '';
      continue;
    }
    if (f.kind === 'int') {
      const n = Number(raw);
      if (!Number.isSafeInteger(n) || n < 0) problems.push(`${name}=${raw} is not a non-negative integer (${f.help})`);
      out[name] = n;
    } else if (f.kind === 'list') out[name] = raw.split(',').map((s) => s.trim()).filter(Boolean);
    else out[name] = raw;
  }
  if (problems.length) {
    throw new PvError(ErrorCodes.CONFIG_INVALID, `invalid configuration:\n  ${problems.join('\n  ')}`);
  }
  return out as Config<S>;
}

/** The environment names shared by every service (same as scripts/stack-env.sh and docker-compose.yml). */
export const commonSpec = {
  PV_KAFKA_BROKERS: { kind: 'list', default: '127.0.0.1:9092', help: 'Kafka bootstrap brokers, comma-separated' },
  PV_KAFKA_TOPIC: { kind: 'string', default: 'pagevault.frames', help: 'frame topic' },
  PV_KAFKA_DLQ_TOPIC: { kind: 'string', default: 'pagevault.frames.dlq', help: 'dead-letter topic' },
  PV_KAFKA_PARTITIONS: { kind: 'int', default: '4', help: 'partitions of the frame topic when it is created' },
  PV_KAFKA_RETENTION_HOURS: { kind: 'int', default: '72', help: 'retention of the frame topic when it is created: frames not compacted by then are lost (watch the consumer lag)' },
  PV_KAFKA_COMPRESSION: { kind: 'string', default: 'zstd', help: 'frames sent to Kafka: zstd (a frame compressed when that makes it a third of its size or less) or none' },
  PV_S3_ENDPOINT: { kind: 'string', default: 'http://127.0.0.1:8333', help: 'S3 endpoint URL' },
  PV_S3_BUCKET: { kind: 'string', default: 'pagevault', help: 'bucket' },
  PV_S3_REGION: { kind: 'string', default: 'us-east-1', help: 'S3 region' },
  PV_S3_ACCESS_KEY: { kind: 'string', required: true, help: 'S3 access key id' },
  PV_S3_SECRET_KEY: { kind: 'string', required: true, secret: true, help: 'S3 secret key' },
  PV_AUTH_TOKEN: { kind: 'string', required: true, secret: true, help: 'bearer token for the HTTP API' },
  PV_HTTP_HOST: { kind: 'string', default: '127.0.0.1', help: 'HTTP listen address' },
} as const satisfies ConfigSpec;
