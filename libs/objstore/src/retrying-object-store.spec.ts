import { ErrorCodes, PvError } from '@pagevault/errors';
import { describe, expect, it } from 'vitest';
import { collect, expectPvError } from './conformance-helpers.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';
import { RetryingObjectStore, type RetryEvent } from './retrying-object-store.js';

const unavailable = () =>
  new PvError(ErrorCodes.STORE_UNAVAILABLE, 'endpoint unreachable', { retriable: true });

/** Fails the first `failures` calls of every operation with the errors `fail` makes, then succeeds. */
function flakyStore(failures: number, fail: () => Error = unavailable) {
  const calls: string[] = [];
  let left = failures;
  const step = async <T>(op: string, value: T): Promise<T> => {
    calls.push(op);
    if (left-- > 0) throw fail();
    return value;
  };
  const store: ObjectStore = {
    description: 'fake:',
    put: (k) => step(`put ${k}`, undefined),
    get: (k) => step(`get ${k}`, Buffer.from('ok')),
    getRange: (k) => step(`getRange ${k}`, Buffer.from('o')),
    head: (k) => step(`head ${k}`, { key: k, size: 2 }),
    delete: (k) => step(`delete ${k}`, undefined),
    list: async function* (): AsyncGenerator<ObjectInfo> {
      for (const key of ['a', 'b', 'c']) yield await step(`list ${key}`, { key, size: 1 });
    },
  };
  return { store, calls };
}

function retrying(inner: ObjectStore, attempts = 4, events: RetryEvent[] = []) {
  return new RetryingObjectStore(inner, {
    attempts,
    baseDelayMs: 2,
    maxDelayMs: 8,
    onRetry: (e) => events.push(e),
  });
}

describe('RetryingObjectStore', () => {
  it('retries retriable errors until an attempt succeeds', async () => {
    const { store, calls } = flakyStore(2);
    const events: RetryEvent[] = [];
    expect((await retrying(store, 4, events).get('k')).toString()).toBe('ok');
    expect(calls).toEqual(['get k', 'get k', 'get k']);
    expect(events.map((e) => [e.operation, e.key, e.attempt])).toEqual([
      ['get', 'k', 1],
      ['get', 'k', 2],
    ]);
  });

  it('backs off exponentially with jitter, capped at maxDelayMs', async () => {
    const events: RetryEvent[] = [];
    await expectPvError(
      retrying(flakyStore(99).store, 6, events).put('k', new Uint8Array()),
      ErrorCodes.STORE_UNAVAILABLE,
    );
    const ceilings = [2, 4, 8, 8, 8];
    expect(events).toHaveLength(5);
    events.forEach((e, i) => {
      expect(e.delayMs).toBeGreaterThanOrEqual(ceilings[i] / 2);
      expect(e.delayMs).toBeLessThanOrEqual(ceilings[i]);
    });
  });

  it('gives up after `attempts` tries and rethrows the last error unchanged', async () => {
    const { store, calls } = flakyStore(99);
    const e = await expectPvError(retrying(store, 3).head('k'), ErrorCodes.STORE_UNAVAILABLE, 'unreachable');
    expect(e.retriable).toBe(true);
    expect(calls).toHaveLength(3);
  });

  it('starts no retry past giveUpAfterMs: a store that hangs fails in bounded time, attempts left or not', async () => {
    // Each attempt hangs 30 ms before failing (a request timing out); 100 attempts allowed, 70 ms to give up.
    const calls: number[] = [];
    const hanging: ObjectStore = {
      ...flakyStore(0).store,
      get: async () => {
        calls.push(performance.now());
        await new Promise((r) => setTimeout(r, 30));
        throw unavailable();
      },
    };
    const store = new RetryingObjectStore(hanging, { attempts: 100, baseDelayMs: 1, maxDelayMs: 1, giveUpAfterMs: 70 });
    const t0 = performance.now();
    await expectPvError(store.get('k'), ErrorCodes.STORE_UNAVAILABLE);
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect(calls.length).toBeLessThanOrEqual(4);
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it.each([
    ['not found', () => new PvError(ErrorCodes.OBJECT_NOT_FOUND, 'k not found')],
    ['store full', () => new PvError(ErrorCodes.STORE_FULL, 'full')],
    ['permission denied', () => new PvError(ErrorCodes.PERMISSION_DENIED, 'no')],
    ['a plain Error', () => new Error('bug')],
  ])('never retries %s', async (_, fail) => {
    const { store, calls } = flakyStore(1, fail);
    await expect(retrying(store).delete('k')).rejects.toThrow();
    expect(calls).toEqual(['delete k']);
  });

  it('a listing that fails midway resumes after the last key it yielded', async () => {
    const { store } = flakyStore(0);
    let failed = false;
    const inner: ObjectStore = {
      ...store,
      list: async function* () {
        yield { key: 'a', size: 1 };
        yield { key: 'b', size: 1 };
        if (!failed) {
          failed = true;
          throw unavailable();
        }
        yield { key: 'c', size: 1 };
      },
    };
    expect((await collect(retrying(inner).list(''))).map((i) => i.key)).toEqual(['a', 'b', 'c']);
  });

  it('rejects nonsensical options', () => {
    const { store } = flakyStore(0);
    expect(() => new RetryingObjectStore(store, { attempts: 0, baseDelayMs: 1, maxDelayMs: 1 })).toThrow(
      /attempts/,
    );
    expect(() => new RetryingObjectStore(store, { attempts: 2, baseDelayMs: 10, maxDelayMs: 1 })).toThrow(
      /maxDelayMs/,
    );
  });
});
