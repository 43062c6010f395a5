import { ErrorCodes } from '@pagevault/errors';
import { afterAll, describe, expect, it } from 'vitest';
import { S3ObjectStore } from './s3-object-store.js';

// Port 1 on loopback: nothing listens, so every request is refused at once. The real server is
// exercised by test/src/objstore/s3-object-store.spec.ts.
const store = new S3ObjectStore({
  endpoint: 'http://127.0.0.1:1',
  bucket: 'pagevault',
  region: 'us-east-1',
  accessKeyId: 'id',
  secretAccessKey: 'secret',
  forcePathStyle: true,
  requestTimeoutMs: 2_000,
  maxSockets: 4,
});
afterAll(() => store.destroy());

async function failure(p: Promise<unknown>) {
  return p.then(
    () => expect.unreachable('expected a failure'),
    (e: unknown) => e as { code: string; retriable: boolean; message: string },
  );
}

describe('S3ObjectStore without a server', () => {
  it('describes itself by bucket', () => expect(store.description).toBe('s3://pagevault'));

  it('rejects a malformed key before sending anything', async () => {
    expect((await failure(store.get('../etc/passwd'))).code).toBe(ErrorCodes.INVALID_ARGUMENT);
    expect((await failure(store.put('a//b', new Uint8Array(1)))).code).toBe(ErrorCodes.INVALID_ARGUMENT);
  });

  it('a refused connection is PV_STORE_UNAVAILABLE, retriable, naming the endpoint', async () => {
    const e = await failure(store.put('k', new Uint8Array(3)));
    expect(e).toMatchObject({ code: ErrorCodes.STORE_UNAVAILABLE, retriable: true });
    expect(e.message).toContain('http://127.0.0.1:1 is unreachable');
  });
});
