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
});
