import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { lookahead } from './lookahead';

describe('lookahead', () => {
  it('produces the next item while the caller handles the current one', async () => {
    const log: string[] = [];
    async function* gen() {
      for (let i = 0; i < 3; i++) {
        log.push(`make ${i}`);
        yield i;
      }
    }
    for await (const i of lookahead(gen())) {
      log.push(`use ${i}`);
      await sleep(1);
    }
    expect(log).toEqual(['make 0', 'make 1', 'use 0', 'make 2', 'use 1', 'use 2']);
  });

  it('throws a producer failure at the caller, never as an unhandled rejection, while the caller is busy', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (e: unknown) => unhandled.push(e);
    process.on('unhandledRejection', onUnhandled);
    try {
      async function* gen() {
        yield 1;
        throw new Error('pack gone');
      }
      const seen: number[] = [];
      const run = async () => {
        for await (const i of lookahead(gen())) {
          seen.push(i);
          await sleep(30); // the producer fails meanwhile
        }
      };
      await expect(run()).rejects.toThrow('pack gone');
      await sleep(10);
      expect(seen).toEqual([1]);
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('closes the producer when the caller stops early', async () => {
    let closed = false;
    async function* gen() {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    for await (const i of lookahead(gen())) if (i === 2) break;
    expect(closed).toBe(true);
  });
});
