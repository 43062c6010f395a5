import { describe, expect, it } from 'vitest';
import { ranSince } from './freeze-group';

describe('ranSince: whether a frozen process ran, from its threads\' context switches', () => {
  const before = new Map([
    [10, 5],
    [11, 7],
  ]);

  it('finds nothing when every thread kept its count', () => {
    expect(ranSince(before, new Map(before))).toBeUndefined();
  });

  it('names a thread that was switched', () => {
    expect(ranSince(before, new Map([[10, 5], [11, 9]]))).toBe('thread 11 ran (2 context switches)');
    expect(ranSince(before, new Map([[10, 6], [11, 7]]), 'ticks of user time')).toBe('thread 10 ran (1 ticks of user time)');
  });

  it('names a thread that started or exited', () => {
    expect(ranSince(before, new Map([[10, 5], [11, 7], [12, 0]]))).toBe('thread 12 started');
    expect(ranSince(before, new Map([[10, 5]]))).toBe('thread 11 exited');
  });
});
