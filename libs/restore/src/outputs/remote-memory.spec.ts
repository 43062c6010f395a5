import koffi from 'koffi';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { RemoteMemory } from './remote-memory';

// The test process writes into its own native memory: process_vm_writev and /proc/self/mem accept the
// caller's own pid, so no second process is needed to check the plumbing.
const SIZE = 8 * 4096;
const ptr = koffi.alloc('uint8_t', SIZE);
const view = Buffer.from(koffi.view(ptr, SIZE));
const base = Number(koffi.address(ptr));
afterAll(() => koffi.free(ptr));

describe('RemoteMemory', () => {
  for (const access of ['vm', 'mem'] as const) {
    it(`scatters one buffer over several ranges and gathers them back (${access})`, () => {
      view.fill(0);
      const mem = new RemoteMemory(process.pid, 4 * 4096);
      try {
        const data = Buffer.concat([Buffer.alloc(100, 1), Buffer.alloc(50, 2)]);
        const segs = [{ addr: base + 10, len: 100 }, { addr: base + 5000, len: 50 }];
        mem.write(access, segs, data);
        expect(view.subarray(10, 110).every((b) => b === 1)).toBe(true);
        expect(view.subarray(5000, 5050).every((b) => b === 2)).toBe(true);
        expect(view[9]).toBe(0);
        expect(mem.read(access, segs, 150).equals(data)).toBe(true);
        expect(mem.syscalls).toBe(access === 'vm' ? 2 : 4);
      } finally {
        mem.close();
      }
    });
  }

  it('says which address the target does not map', () => {
    const mem = new RemoteMemory(process.pid, 4096);
    try {
      expect(() => mem.write('vm', [{ addr: base, len: 16 }, { addr: 0x1000, len: 16 }], Buffer.alloc(32))).toThrow(
        expect.objectContaining({ code: ErrorCodes.TARGET_MISMATCH, details: expect.objectContaining({ address: '0x1000' }) }),
      );
      expect(() => mem.read('mem', [{ addr: 0x1000, len: 16 }], 16)).toThrow(expect.objectContaining({ code: ErrorCodes.TARGET_MISMATCH }));
    } finally {
      mem.close();
    }
  });
});
