import { describe, expect, it } from 'vitest';
import { IOV_MAX, IovecPair } from './iovec';
import { PAGE_FAILED, PAGE_OK, PAGE_PENDING } from './page-status';

const PS = 4096;
const iov = (buf: Buffer, i: number) => ({
  base: buf.readBigUInt64LE(i * 16),
  len: Number(buf.readBigUInt64LE(i * 16 + 8)),
});

describe('IovecPair', () => {
  it('coalesces contiguous pending pages into one run, local slots mirroring batch indexes', () => {
    const p = new IovecPair();
    const addrs = new Float64Array([0x10000, 0x11000, 0x12000, 0x20000, 0x21000]);
    const status = new Uint8Array(5);
    status[1] = PAGE_FAILED;
    const { runs, next } = p.fill(addrs, status, 0, 5, PS, 0x5000000);
    expect({ runs, next }).toEqual({ runs: 3, next: 5 });
    expect(iov(p.remote, 0)).toEqual({ base: 0x10000n, len: PS });
    expect(iov(p.remote, 1)).toEqual({ base: 0x12000n, len: PS });
    expect(iov(p.remote, 2)).toEqual({ base: 0x20000n, len: 2 * PS });
    expect(iov(p.local, 1)).toEqual({ base: BigInt(0x5000000 + 2 * PS), len: PS });
    expect(iov(p.local, 2)).toEqual({ base: BigInt(0x5000000 + 3 * PS), len: 2 * PS });
  });

  it('encodes addresses above 4 GiB and near the top of the address space exactly', () => {
    const p = new IovecPair();
    p.fill(new Float64Array([0x7ffff7dd1000]), new Uint8Array(1), 0, 1, PS, 0);
    expect(iov(p.remote, 0).base).toBe(0x7ffff7dd1000n);
  });

  it('stops at IOV_MAX runs and says where to continue', () => {
    const p = new IovecPair();
    const n = IOV_MAX + 10;
    const addrs = new Float64Array(n).map((_, i) => 0x100000 + i * 2 * PS);
    expect(p.fill(addrs, new Uint8Array(n), 0, n, PS, 0)).toEqual({ runs: IOV_MAX, next: IOV_MAX });
  });

  it('marks the pages a short transfer covered and returns the first one it did not', () => {
    const p = new IovecPair();
    const addrs = new Float64Array([0x10000, 0x11000, 0x12000, 0x30000, 0x31000]);
    const status = new Uint8Array(5);
    p.fill(addrs, status, 0, 5, PS, 0);
    expect(p.markDone(status, 4 * PS, PS)).toBe(4);
    expect([...status]).toEqual([PAGE_OK, PAGE_OK, PAGE_OK, PAGE_OK, PAGE_PENDING]);
    status.fill(PAGE_PENDING);
    p.fill(addrs, status, 0, 5, PS, 0);
    expect(p.markDone(status, 5 * PS, PS)).toBe(-1);
    expect(p.first(1)).toBe(3);
  });
});
