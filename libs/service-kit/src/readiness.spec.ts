import { describe, expect, it } from 'vitest';
import { readinessOf } from './health.controller';

describe('readinessOf', () => {
  it('is ready when every probe answers, and names each that fails or does not answer in time', async () => {
    expect(await readinessOf({ a: async () => 1, b: async () => 2 })()).toBeUndefined();
    let calls = 0;
    const ready = readinessOf(
      {
        store: async () => {
          throw new Error('connection refused');
        },
        kafka: () => (calls++, new Promise(() => undefined)), // hangs
      },
      50,
    );
    expect(await ready()).toBe('store: connection refused; kafka: no answer within 50 ms');
    // The hanging probe is waited on again, not started once more.
    expect(await ready()).toBe('store: connection refused; kafka: no answer within 50 ms');
    expect(calls).toBe(1);
  });
});
