import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteReader, readPages, writePages } from '@pagevault/capture';
import { addr, startFixture, type FixtureInfo, type Target } from './helpers/target-process';

describe('reading and writing pages of a live process', () => {
  let t: Target<FixtureInfo>;
  let ps: number;
  beforeAll(async () => {
    t = await startFixture();
    ps = t.info.pageSize;
  });
  afterAll(async () => {
    await t.stop();
  });

  it('readPages returns the pages back to back, through process_vm_readv or /proc/PID/mem alike', () => {
    const base = addr(t.info.marker);
    const addrs = [base, base + ps, base + 7 * ps];
    const a = readPages(t.info.pid, addrs);
    const b = readPages(t.info.pid, addrs, { useProcMem: true });
    expect(a).toEqual(b);
    expect(a.toString('latin1', 2 * ps, 2 * ps + 8)).toBe('PVMARK:7');
  });

  it('writePages writes many pages in batches, through either path', () => {
    const base = addr(t.info.untouched);
    const addrs = Array.from({ length: 12 }, (_, i) => base + i * ps).filter((_, i) => i !== 5);
    const data = Buffer.alloc(addrs.length * ps);
    for (let i = 0; i < addrs.length; i++) data.fill(i + 1, i * ps, (i + 1) * ps);
    writePages(t.info.pid, addrs, data);
    expect(readPages(t.info.pid, addrs)).toEqual(data);
    data.fill(0xee, 0, ps);
    writePages(t.info.pid, addrs.slice(0, 1), data.subarray(0, ps), { useProcMem: true });
    expect(readPages(t.info.pid, addrs.slice(0, 1))[0]).toBe(0xee);
  });

  it('readPages names the page it cannot read', () => {
    expect(() => readPages(t.info.pid, [0x10000])).toThrow(/0x10000/);
  });

  it('a batch read stops at a page that is not mapped and resumes after it', () => {
    const base = addr(t.info.marker);
    const addrs = new Float64Array([base, base + ps, 0x10000, base + 2 * ps, base + 3 * ps]);
    const status = new Uint8Array(addrs.length);
    for (const useProcMem of [false, true]) {
      status.fill(0);
      const r = new RemoteReader(t.info.pid, ps, 8, { useProcMem });
      try {
        expect(r.readPending(addrs, status, 0, addrs.length)).toBe(2);
        expect([...status]).toEqual([1, 1, 0, 0, 0]);
        status[2] = 2;
        expect(r.readPending(addrs, status, 2, addrs.length)).toBe(addrs.length);
        expect([...status]).toEqual([1, 1, 2, 1, 1]);
        expect(r.buf.toString('latin1', 4 * ps, 4 * ps + 8)).toBe('PVMARK:3');
        expect(r.calls).toBeLessThanOrEqual(4);
      } finally {
        r.close();
      }
    }
  });

  it('coalesces contiguous pages: one call for a long run of present pages', () => {
    const base = addr(t.info.marker);
    const addrs = new Float64Array(16).map((_, i) => base + i * ps);
    const r = new RemoteReader(t.info.pid, ps, 16);
    try {
      expect(r.readPending(addrs, new Uint8Array(16), 0, 16)).toBe(16);
      expect(r.calls).toBe(1);
      expect(r.bytesRead).toBe(16 * ps);
    } finally {
      r.close();
    }
  });
});
