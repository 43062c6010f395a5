import { describe, expect, it } from 'vitest';
import { OffsetTracker } from './offset-tracker';

describe('OffsetTracker', () => {
  it('commits past the last record handled when no snapshot is open', () => {
    const t = new OffsetTracker();
    expect(t.committable(0, [])).toBeUndefined();
    t.seen(0, '41');
    expect(t.committable(0, [])).toBe('42');
  });

  it('never commits past the first frame of a snapshot still open on that partition', () => {
    const t = new OffsetTracker();
    t.seen(0, '100');
    t.seen(1, '7');
    const open = [
      { partition: 0, firstOffset: '17' },
      { partition: 0, firstOffset: '12' },
      { partition: 1, firstOffset: '3' },
    ];
    expect(t.committable(0, open)).toBe('12');
    expect(t.committable(1, open)).toBe('3');
  });

  it('compares int64 offsets exactly, beyond 2^53', () => {
    const t = new OffsetTracker();
    t.seen(0, '9007199254740993');
    expect(t.committable(0, [])).toBe('9007199254740994');
    expect(t.committable(0, [{ partition: 0, firstOffset: '9007199254740993' }])).toBe('9007199254740993');
  });

  it('forgets everything on a rebalance', () => {
    const t = new OffsetTracker();
    t.seen(0, '5');
    t.clear();
    expect(t.committable(0, [])).toBeUndefined();
  });
});
