import { afterEach, describe, expect, it } from 'vitest';
import { frozenCount, installThawOnSignals, registerFrozen, thawAllFrozen } from './thaw-registry';

describe('thaw registry', () => {
  afterEach(() => thawAllFrozen());

  it('thaws every registered target once, last registered first, even when one of them throws', () => {
    const thawed: string[] = [];
    registerFrozen({ thaw: () => void thawed.push('a') });
    registerFrozen({
      thaw: () => {
        throw new Error('gone');
      },
    });
    registerFrozen({ thaw: () => void thawed.push('c') });
    expect(frozenCount()).toBe(3);
    thawAllFrozen();
    expect(thawed).toEqual(['c', 'a']);
    expect(frozenCount()).toBe(0);
  });

  it('thaws on SIGTERM and leaves exiting to the other listeners when there are some', () => {
    const other = (): void => undefined;
    process.on('SIGTERM', other);
    const uninstall = installThawOnSignals();
    expect(installThawOnSignals()).toBe(uninstall);
    let thawed = false;
    registerFrozen({ thaw: () => void (thawed = true) });
    try {
      process.emit('SIGTERM', 'SIGTERM');
      expect(thawed).toBe(true);
      expect(process.listenerCount('SIGTERM')).toBe(2);
    } finally {
      uninstall();
      process.removeListener('SIGTERM', other);
    }
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });
});
