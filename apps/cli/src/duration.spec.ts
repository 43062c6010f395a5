import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { parseDuration } from './duration';

describe('parseDuration', () => {
  it('reads a number with a unit, or a bare 0', () => {
    expect(parseDuration('0', '--grace')).toBe(0);
    expect(parseDuration('250ms', '--grace')).toBe(250);
    expect(parseDuration('90s', '--grace')).toBe(90_000);
    expect(parseDuration('1.5h', '--grace')).toBe(5_400_000);
    expect(parseDuration('2d', '--grace')).toBe(172_800_000);
  });

  it('refuses a bare number other than 0, negative values and unknown units, naming the option', () => {
    for (const bad of ['10', '-1h', '1w', 'h', '', '1 h x']) {
      expect(() => parseDuration(bad, '--grace'), bad).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('--grace') }));
    }
  });
});
