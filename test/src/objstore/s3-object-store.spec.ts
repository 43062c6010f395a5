import { createHash } from 'node:crypto';
import { ErrorCodes, isPvError, type PvError } from '@pagevault/errors';
import { RetryingObjectStore, type RetryEvent } from '@pagevault/objstore';
import { describeObjectStoreConformance } from '@pagevault/objstore/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireS3Server, s3Env, s3Store } from './s3-env.js';

// The suite writes under a fresh "conformance-<time>-<random>/" prefix and deletes it at the end.
describeObjectStoreConformance(`S3ObjectStore on ${s3Env.endpoint} bucket ${s3Env.bucket}`, async () => {
  const store = s3Store();
  await requireS3Server(store);
  return { store, cleanup: async () => store.destroy() };
});

/** Runs `operation` (started only now, so no rejection goes unobserved) and returns its PvError. */
async function failure(operation: () => Promise<unknown>): Promise<PvError> {
  const e = await operation().then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!isPvError(e)) throw new Error(`expected a PvError, got ${String(e)}`, { cause: e });
  return e;
}

describe('S3ObjectStore against a server that says no', () => {
  const wrongSecret = s3Store({ secretAccessKey: 'not-the-secret' });
  const good = s3Store();
  beforeAll(() => requireS3Server(good));
  afterAll(() => [wrongSecret, good].forEach((s) => s.destroy()));

  it('a wrong secret key is PV_PERMISSION_DENIED, not retriable, naming the key', async () => {
    const key = `pagevault-integration/denied-${Date.now()}`;
    for (const op of [() => wrongSecret.put(key, Buffer.from('x')), () => wrongSecret.get(key)]) {
      const e = await failure(op);
      expect(e.code).toBe(ErrorCodes.PERMISSION_DENIED);
      expect(e.retriable).toBe(false);
      expect(e.message).toContain(key);
    }
    expect(await good.head(key), 'the refused put wrote nothing').toBeUndefined();
  });

  it('the server checks the body against the SHA-256 a put signs: one that does not match is refused, retriable', async () => {
    const key = `pagevault-integration/sha-${Date.now()}`;
    const body = Buffer.from('the bytes of a pack');
    const e = await failure(() => good.put(key, body, createHash('sha256').update('other bytes').digest('hex')));
    expect(e.code).toBe(ErrorCodes.STORE_UNAVAILABLE);
    expect(e.retriable).toBe(true);
    expect(e.message).toMatch(/XAmzContentSHA256Mismatch/);
    expect(await good.head(key), 'the refused put wrote nothing').toBeUndefined();
    // With the right hash given, or none (the store hashes the body itself), the object is written.
    await good.put(key, body, createHash('sha256').update(body).digest('hex'));
    await good.put(`${key}-2`, body);
    expect((await good.get(key)).equals(body)).toBe(true);
    expect((await good.get(`${key}-2`)).equals(body)).toBe(true);
    await good.delete(key);
    await good.delete(`${key}-2`);
  });

  it('a bucket that does not exist is not mistaken for a missing object', async () => {
    const e = await failure(() => s3Store({ bucket: 'pagevault-no-such-bucket' }).get('k'));
    expect(e.code).toBe(ErrorCodes.STORE_UNAVAILABLE);
    expect(e.message).toContain('bucket pagevault-no-such-bucket does not exist');
  });
});

describe('S3ObjectStore with nothing listening', () => {
  const unreachable = s3Store({ endpoint: 'http://127.0.0.1:1', requestTimeoutMs: 2_000 });
  afterAll(() => unreachable.destroy());

  it('is PV_STORE_UNAVAILABLE, retriable, and says the endpoint is unreachable', async () => {
    const ops = [
      () => unreachable.put('k', Buffer.from('x')),
      () => unreachable.get('k'),
      () => unreachable.head('k'),
    ];
    for (const op of ops) {
      const e = await failure(op);
      expect(e.code).toBe(ErrorCodes.STORE_UNAVAILABLE);
      expect(e.retriable).toBe(true);
      expect(e.message).toContain('S3 endpoint http://127.0.0.1:1 is unreachable');
    }
  });

  it('RetryingObjectStore tries `attempts` times, then gives the same error back', async () => {
    const events: RetryEvent[] = [];
    const onRetry = (e: RetryEvent) => events.push(e);
    const retrying = new RetryingObjectStore(unreachable, {
      attempts: 3,
      baseDelayMs: 10,
      maxDelayMs: 40,
      onRetry,
    });
    const e = await failure(() => retrying.get('k'));
    expect(e.code).toBe(ErrorCodes.STORE_UNAVAILABLE);
    expect(events.map((r) => [r.operation, r.attempt])).toEqual([
      ['get', 1],
      ['get', 2],
    ]);
  });
});
