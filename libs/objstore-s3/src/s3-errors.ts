import { ErrorCodes, PvError, type ErrorCode } from '@pagevault/errors';

export interface S3ErrorContext {
  operation: string;
  key: string;
  bucket: string;
  endpoint: string;
}

// Node socket errors, and names the SDK and S3 servers use for "try again later". BadDigest and
// XAmzContentSHA256Mismatch: the body's digest did not match what arrived, so the bytes were damaged
// in transit and may not be next time.
const words = (s: string) => new Set(s.split(/\s+/).filter(Boolean));
const NETWORK_CODES = words(
  'ECONNREFUSED ECONNRESET ETIMEDOUT EPIPE EHOSTUNREACH ENETUNREACH ENOTFOUND EAI_AGAIN',
);
const TRANSIENT_NAMES =
  words(`TimeoutError RequestTimeout RequestTimeoutException AbortError SlowDown Throttling
  ThrottlingException TooManyRequestsException RequestLimitExceeded ServiceUnavailable InternalError BadDigest
  XAmzContentSHA256Mismatch`);
const DENIED_NAMES = words(
  'AccessDenied Forbidden SignatureDoesNotMatch InvalidAccessKeyId InvalidToken ExpiredToken',
);
const FULL_NAMES = words('InsufficientStorage QuotaExceeded XMinioStorageFull');

interface SdkErrorShape {
  name?: string;
  code?: string;
  message?: string;
  cause?: { code?: string };
  $metadata?: { httpStatusCode?: number };
}

/** Maps whatever the SDK threw to a PvError naming the operation, key, bucket and endpoint. */
export function mapS3Error(e: unknown, ctx: S3ErrorContext): PvError {
  if (e instanceof PvError) return e;
  const err: SdkErrorShape = typeof e === 'object' && e !== null ? e : {};
  const name = err.name === 'Error' ? '' : (err.name ?? ''); // a bare socket error has no useful name
  const status = err.$metadata?.httpStatusCode;
  const code = err.code ?? err.cause?.code;
  const reason = [status, name, code].filter((x) => x !== undefined && x !== '').join(' ') || String(e);
  const what = `${ctx.operation} of ${ctx.key} in bucket ${ctx.bucket} at ${ctx.endpoint}`;
  const details = { ...ctx, status, s3Code: name || code };
  const make = (c: ErrorCode, message: string, retriable = false) =>
    new PvError(c, message, { retriable, cause: e, details });

  if (name === 'NoSuchBucket') {
    return make(ErrorCodes.STORE_UNAVAILABLE, `${what} failed: bucket ${ctx.bucket} does not exist`);
  }
  if (status === 404 || name === 'NoSuchKey' || name === 'NotFound') {
    return make(
      ErrorCodes.OBJECT_NOT_FOUND,
      `object ${ctx.key} not found in bucket ${ctx.bucket} at ${ctx.endpoint}`,
    );
  }
  if (status === 403 || DENIED_NAMES.has(name)) {
    const hint = 'check the access key and secret key';
    return make(ErrorCodes.PERMISSION_DENIED, `${what} was refused: permission denied (${reason}); ${hint}`);
  }
  if (status === 507 || FULL_NAMES.has(name)) {
    return make(ErrorCodes.STORE_FULL, `${what} failed: the store is full (${reason})`);
  }
  const transient =
    (status !== undefined && (status >= 500 || status === 429 || status === 408)) ||
    TRANSIENT_NAMES.has(name) ||
    (code !== undefined && NETWORK_CODES.has(code));
  if (transient) {
    const why = `the S3 endpoint ${ctx.endpoint} is unreachable or overloaded (${reason})`;
    return make(ErrorCodes.STORE_UNAVAILABLE, `${what} failed: ${why}`, true);
  }
  return make(ErrorCodes.STORE_UNAVAILABLE, `${what} failed: ${reason}: ${err.message ?? ''}`.trim());
}
