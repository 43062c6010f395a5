import { ErrorCodes, PvError } from '@pagevault/errors';

export interface S3ObjectStoreOptions {
  /** e.g. "http://127.0.0.1:8333"; the scheme decides http or https. */
  endpoint: string;
  bucket: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Path-style URLs (http://host/bucket/key): what SeaweedFS, MinIO and loopback endpoints need. */
  forcePathStyle: boolean;
  /**
   * Bounds the whole of each request. Size it for the largest object over the slowest link, not for
   * the median request.
   */
  requestTimeoutMs: number;
  /**
   * How long a request's socket may sit idle — a server that accepted and stopped answering — and how
   * long a connection may take to open (at most 5 s); default requestTimeoutMs.
   */
  idleTimeoutMs?: number;
  /** Sockets per store: with keep-alive, also the bound on requests in flight to S3. */
  maxSockets: number;
}

/** Validates options once, at the edge, so a bad configuration fails with its field named. */
export function validateS3Options(o: S3ObjectStoreOptions): S3ObjectStoreOptions {
  const bad = (field: string, why: string) =>
    new PvError(ErrorCodes.CONFIG_INVALID, `invalid S3 object store option ${field}: ${why}`, {
      details: { field },
    });
  let url: URL;
  try {
    url = new URL(o.endpoint);
  } catch (cause) {
    throw Object.assign(bad('endpoint', `${JSON.stringify(o.endpoint)} is not a URL`), { cause });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw bad('endpoint', 'must be http:// or https://');
  // S3 bucket naming rules, in short: 3-63 of lowercase letters, digits, '.', '-'.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(o.bucket ?? '')) {
    throw bad('bucket', `${JSON.stringify(o.bucket)} is not a valid bucket name`);
  }
  for (const field of ['region', 'accessKeyId', 'secretAccessKey'] as const) {
    if (typeof o[field] !== 'string' || o[field].length === 0) throw bad(field, 'must be a non-empty string');
  }
  if (!Number.isInteger(o.requestTimeoutMs) || o.requestTimeoutMs < 1) {
    throw bad('requestTimeoutMs', `must be an integer >= 1, got ${o.requestTimeoutMs}`);
  }
  if (o.idleTimeoutMs !== undefined && (!Number.isInteger(o.idleTimeoutMs) || o.idleTimeoutMs < 1)) {
    throw bad('idleTimeoutMs', `must be an integer >= 1, got ${o.idleTimeoutMs}`);
  }
  if (!Number.isInteger(o.maxSockets) || o.maxSockets < 1) {
    throw bad('maxSockets', `must be an integer >= 1, got ${o.maxSockets}`);
  }
  return o;
}
