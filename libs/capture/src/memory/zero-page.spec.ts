import { describe, expect, it } from 'vitest';
import { ZeroScanner } from './zero-page';

describe('ZeroScanner', () => {
  it('tells zero pages from pages with a single non-zero byte anywhere', () => {
    const ps = 4096;
    const buf = Buffer.alloc(8 * ps);
    const z = new ZeroScanner(buf, ps);
    buf[1 * ps] = 1; // probed word
    buf[2 * ps + 1234] = 1; // not probed: needs the full compare
    buf[3 * ps + ps - 1] = 0x80; // last byte
    expect([...Array(8).keys()].map((k) => z.isZero(k))).toEqual([
      true,
      false,
      false,
      false,
      true,
      true,
      true,
      true,
    ]);
  });

  it('checks runs of zero pages in one compare, and finds the one page of a run that is not zero', () => {
    const ps = 4096;
    const buf = Buffer.alloc(200 * ps);
    const z = new ZeroScanner(buf, ps);
    expect(z.allZero(0, 200)).toBe(true); // longer than one compare
    buf[150 * ps + 77] = 9; // passes the probe, fails the run
    expect(z.mayBeZero(150)).toBe(true);
    expect(z.allZero(0, 200)).toBe(false);
    expect(z.allZero(0, 150)).toBe(true);
    expect(z.allZero(151, 200)).toBe(true);
    expect(z.isZero(150)).toBe(false);
  });
});
