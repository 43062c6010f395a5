import { ErrorCodes } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { mapS3Error } from './s3-errors.js';

const ctx = {
  operation: 'get',
  key: 'packs/ab/cd.pack',
  bucket: 'pagevault',
  endpoint: 'http://127.0.0.1:8333',
};

/** What the SDK throws for a service error: a named error with HTTP metadata. */
const serviceError = (name: string, status: number) =>
  Object.assign(new Error(`${name} happened`), {
    name,
    $fault: 'client',
    $metadata: { httpStatusCode: status },
  });
const socketError = (code: string) => Object.assign(new Error(`connect ${code} 127.0.0.1:8333`), { code });

describe('S3 errors', () => {
  it.each([
    ['NoSuchKey 404', serviceError('NoSuchKey', 404), ErrorCodes.OBJECT_NOT_FOUND, false],
    ['HEAD NotFound 404', serviceError('NotFound', 404), ErrorCodes.OBJECT_NOT_FOUND, false],
    ['AccessDenied 403', serviceError('AccessDenied', 403), ErrorCodes.PERMISSION_DENIED, false],
    [
      'SignatureDoesNotMatch 403',
      serviceError('SignatureDoesNotMatch', 403),
      ErrorCodes.PERMISSION_DENIED,
      false,
    ],
    ['InternalError 500', serviceError('InternalError', 500), ErrorCodes.STORE_UNAVAILABLE, true],
    ['ServiceUnavailable 503', serviceError('ServiceUnavailable', 503), ErrorCodes.STORE_UNAVAILABLE, true],
    ['SlowDown 503', serviceError('SlowDown', 503), ErrorCodes.STORE_UNAVAILABLE, true],
    ['throttled 429', serviceError('TooManyRequests', 429), ErrorCodes.STORE_UNAVAILABLE, true],
    ['ECONNREFUSED', socketError('ECONNREFUSED'), ErrorCodes.STORE_UNAVAILABLE, true],
    ['ECONNRESET', socketError('ECONNRESET'), ErrorCodes.STORE_UNAVAILABLE, true],
    [
      'the handler timing out',
      Object.assign(new Error('timed out'), { name: 'TimeoutError' }),
      ErrorCodes.STORE_UNAVAILABLE,
      true,
    ],
    [
      'BadDigest 400 (damaged in transit)',
      serviceError('BadDigest', 400),
      ErrorCodes.STORE_UNAVAILABLE,
      true,
    ],
    ['507 full', serviceError('InsufficientStorage', 507), ErrorCodes.STORE_FULL, false],
    ['NoSuchBucket 404', serviceError('NoSuchBucket', 404), ErrorCodes.STORE_UNAVAILABLE, false],
    ['an unknown 400', serviceError('InvalidArgument', 400), ErrorCodes.STORE_UNAVAILABLE, false],
  ] as const)('%s becomes %s (retriable: %s)', (_, error, code, retriable) => {
    const e = mapS3Error(error, ctx);
    expect(e.code).toBe(code);
    expect(e.retriable).toBe(retriable);
    expect(e.cause).toBe(error);
    expect(e.details).toMatchObject({ key: ctx.key, bucket: 'pagevault', endpoint: ctx.endpoint });
  });

  it('a missing object names the key and the bucket', () => {
    const e = mapS3Error(serviceError('NoSuchKey', 404), ctx);
    expect(e.message).toContain('packs/ab/cd.pack');
    expect(e.message).toContain('pagevault');
  });

  it('an unreachable endpoint says so, naming the endpoint', () => {
    const e = mapS3Error(socketError('ECONNREFUSED'), ctx);
    expect(e.message).toMatch(/S3 endpoint http:\/\/127\.0\.0\.1:8333 is unreachable/);
  });

  it('a missing bucket is not mistaken for a missing object', () => {
    expect(mapS3Error(serviceError('NoSuchBucket', 404), ctx).message).toContain(
      'bucket pagevault does not exist',
    );
  });
});
