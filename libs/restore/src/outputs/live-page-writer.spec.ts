import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { LivePageWriter } from './live-page-writer';
import type { Access, RemoteMemory, Segment } from './remote-memory';

const PS = 4096;

/** A RemoteMemory over a Map of pages, counting calls; `corrupt` flips a byte of one page on write. */
class FakeMemory {
  readonly pid = 99;
  readonly pages = new Map<number, Buffer>();
  writes: Segment[][] = [];
  reads = 0;
  corrupt: number | undefined;

  write(_a: Access, segs: Segment[], data: Buffer): void {
    this.writes.push(segs);
    let off = 0;
    for (const s of segs) {
      for (let p = 0; p < s.len; p += PS) {
        const page = Buffer.from(data.subarray(off + p, off + p + PS));
        if (s.addr + p === this.corrupt) page[7] ^= 1;
        this.pages.set(s.addr + p, page);
      }
      off += s.len;
    }
  }

  read(_a: Access, segs: Segment[], total: number): Buffer {
    this.reads++;
    const out = Buffer.alloc(total);
    let off = 0;
    for (const s of segs) {
      for (let p = 0; p < s.len; p += PS) this.pages.get(s.addr + p)?.copy(out, off + p);
      off += s.len;
    }
    return out;
  }
}

function setup(batchPages = 4) {
  const mem = new FakeMemory();
  const counters = { bytesWritten: 0, verifiedPages: 0, zeroPagesWritten: 0 };
  const w = new LivePageWriter(mem as unknown as RemoteMemory, PS, batchPages, counters);
  return { mem, counters, w };
}

const chunk = (addrs: number[]) => ({ addresses: Float64Array.from(addrs), data: Buffer.concat(addrs.map((a) => Buffer.alloc(PS, a / PS))) });

describe('LivePageWriter', () => {
  it('writes a chunk in batches of at most batchPages pages, one range per run, and reads each back', () => {
    const { mem, counters, w } = setup(4);
    const c = chunk([0x10000, 0x11000, 0x12000, 0x20000, 0x21000, 0x30000]);
    w.pages('vm', c.addresses, c.data);
    expect(mem.writes).toEqual([
      [{ addr: 0x10000, len: 3 * PS }, { addr: 0x20000, len: PS }],
      [{ addr: 0x21000, len: PS }, { addr: 0x30000, len: PS }],
    ]);
    expect(mem.reads).toBe(2);
    expect(counters).toEqual({ bytesWritten: 6 * PS, verifiedPages: 6, zeroPagesWritten: 0 });
  });

  it('writes zeros only over the pages of a zero run that are not zero already', () => {
    const { mem, counters, w } = setup(4);
    mem.pages.set(0x41000, Buffer.alloc(PS, 0xaa));
    mem.pages.set(0x42000, Buffer.alloc(PS, 0xbb));
    mem.pages.set(0x45000, Buffer.alloc(PS, 0xcc));
    w.zeroRun('vm', { start: 0x40000, pages: 6 });
    expect(mem.writes).toEqual([[{ addr: 0x41000, len: 2 * PS }], [{ addr: 0x45000, len: PS }]]);
    expect(counters.zeroPagesWritten).toBe(3);
    expect([...mem.pages.values()].every((p) => p.every((b) => b === 0))).toBe(true);
  });

  it('names the page that reads back different from what was written', () => {
    const { mem, w } = setup(8);
    mem.corrupt = 0x52000;
    const c = chunk([0x50000, 0x51000, 0x52000, 0x53000]);
    expect(() => w.pages('vm', c.addresses, c.data)).toThrow(
      expect.objectContaining({ code: ErrorCodes.PAGE_HASH_MISMATCH, details: { pid: 99, address: '0x52000' } }),
    );
  });
});
