import { describe, expect, it } from 'vitest';
import { readPages, writePages } from './page-io';
import { libc } from './libc';
import { RemoteReader } from './remote-reader';

/** A page-aligned window of a Buffer of this very process, and its address. */
function ownPages(n: number): { buf: Buffer; addr: number; ps: number } {
  const c = libc()!;
  const ps = c.pageSize;
  const raw = Buffer.allocUnsafeSlow((n + 1) * ps);
  const base = c.addressOf(raw);
  const skip = (ps - (base % ps)) % ps;
  return { buf: raw.subarray(skip, skip + n * ps), addr: base + skip, ps };
}

describe('reading and writing process memory through koffi', () => {
  it('reads pages of a process (here: itself) with one process_vm_readv per batch', () => {
    const { buf, addr, ps } = ownPages(4);
    for (let i = 0; i < 4; i++) buf.fill(0x30 + i, i * ps, (i + 1) * ps);
    const got = readPages(process.pid, [addr, addr + ps, addr + 3 * ps], { pageSize: ps });
    expect([got[0], got[ps], got[2 * ps]]).toEqual([0x30, 0x31, 0x33]);
    const r = new RemoteReader(process.pid, ps, 4);
    r.readPending(new Float64Array([addr, addr + ps, addr + 2 * ps, addr + 3 * ps]), new Uint8Array(4), 0, 4);
    expect(r.calls).toBe(1);
    expect(r.buf.equals(buf)).toBe(true);
  });

  it('writes pages with process_vm_writev', () => {
    const { buf, addr, ps } = ownPages(2);
    buf.fill(0);
    writePages(process.pid, [addr + ps], Buffer.alloc(ps, 0x5a), { pageSize: ps });
    expect(buf[ps]).toBe(0x5a);
    expect(buf[0]).toBe(0);
  });

  it('maps a gone process to PV_PROCESS_EXITED (ESRCH)', () => {
    const { addr, ps } = ownPages(1);
    expect(() => readPages(2 ** 22 + 12345, [addr], { pageSize: ps })).toThrow(
      expect.objectContaining({ code: 'PV_PROCESS_EXITED' }),
    );
  });
});
