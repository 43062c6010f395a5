import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { collect } from './conformance-helpers.js';
import { ConcurrencyLimitedObjectStore } from './concurrency-limited-object-store.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

/** Counts how many requests are inside the store at once. */
function slowStore() {
  const gauge = { now: 0, max: 0 };
  const request = async <T>(value: T): Promise<T> => {
    gauge.max = Math.max(gauge.max, ++gauge.now);
    await sleep(2);
    gauge.now--;
    return value;
  };
  const store: ObjectStore = {
    description: 'slow:',
    put: () => request(undefined),
    get: () => request(Buffer.alloc(0)),
    getRange: () => request(Buffer.alloc(0)),
    head: () => request(undefined),
    delete: () => request(undefined),
    list: async function* (): AsyncGenerator<ObjectInfo> {
      for (let i = 0; i < 5; i++) yield await request({ key: `k${i}`, size: 0 });
    },
  };
  return { store, gauge };
}

describe('ConcurrencyLimitedObjectStore', () => {
  it('never lets more than maxInFlight requests reach the inner store', async () => {
    const { store, gauge } = slowStore();
    const limited = new ConcurrencyLimitedObjectStore(store, 3);
    await Promise.all([
      ...Array.from({ length: 20 }, (_, i) =>
        i % 2 ? limited.put(`k${i}`, new Uint8Array()) : limited.get(`k${i}`),
      ),
      collect(limited.list('')),
      collect(limited.list('')),
    ]);
    expect(gauge.max).toBe(3);
    expect(gauge.now).toBe(0);
  });

  it('frees the slot when a request fails', async () => {
    const { store } = slowStore();
    const limited = new ConcurrencyLimitedObjectStore(
      { ...store, get: () => Promise.reject(new Error('boom')) },
      1,
    );
    await expect(limited.get('a')).rejects.toThrow('boom');
    await expect(limited.head('a')).resolves.toBeUndefined();
  });

  it('rejects a limit below 1', () => {
    expect(() => new ConcurrencyLimitedObjectStore(slowStore().store, 0)).toThrow(/maxInFlight/);
  });
});
