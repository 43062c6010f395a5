import { ErrorCodes, isPvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { validateS3Options, type S3ObjectStoreOptions } from './s3-options.js';

const good: S3ObjectStoreOptions = {
  endpoint: 'http://127.0.0.1:8333',
  bucket: 'pagevault',
  region: 'us-east-1',
  accessKeyId: 'id',
  secretAccessKey: 'secret',
  forcePathStyle: true,
  requestTimeoutMs: 30_000,
  maxSockets: 32,
};

function fieldRejected(patch: Partial<S3ObjectStoreOptions>): unknown {
  try {
    validateS3Options({ ...good, ...patch });
    return undefined;
  } catch (e) {
    return isPvError(e, ErrorCodes.CONFIG_INVALID) ? e.details.field : e;
  }
}

describe('S3 object store options', () => {
  it('accepts a complete configuration', () => expect(validateS3Options(good)).toBe(good));

  it.each([
    [{ endpoint: '127.0.0.1:8333' }, 'endpoint'],
    [{ endpoint: 'ftp://host' }, 'endpoint'],
    [{ bucket: 'Bad_Bucket' }, 'bucket'],
    [{ bucket: '' }, 'bucket'],
    [{ region: '' }, 'region'],
    [{ secretAccessKey: '' }, 'secretAccessKey'],
    [{ requestTimeoutMs: 0 }, 'requestTimeoutMs'],
    [{ maxSockets: 1.5 }, 'maxSockets'],
  ] as const)('rejects %j with PV_CONFIG_INVALID naming %s', (patch, field) => {
    expect(fieldRejected(patch)).toBe(field);
  });
});
