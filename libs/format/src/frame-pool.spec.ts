import { describe, expect, it } from 'vitest';
import koffi from 'koffi';
import { DIRECT_ALIGN, alignUp, paddedView } from './aligned-buffer';
import { FramePool } from './frame-pool';
import { SnapshotWriter } from './snapshot-writer';
import { decodeFrame } from './frame';
import { ID } from './test-helpers';
import { FrameType, VmaKind } from './constants';

describe('FramePool', () => {
  it('hands a given-back frame out again, once, and only frames it handed out, of its size', () => {
    const pool = new FramePool(2);
    const a = pool.take(4096);
    pool.give(a);
    pool.give(a); // twice: still one entry
    expect(pool.size).toBe(1);
    expect(pool.take(4096)).toBe(a);
    expect(pool.take(4096)).not.toBe(a);
    pool.give(Buffer.allocUnsafeSlow(4096)); // not one of its own
    pool.give(a.subarray(0, 100)); // a view of one, another size
    expect(pool.size).toBe(0);
    const three = [pool.take(4096), pool.take(4096), pool.take(4096)];
    for (const f of three) pool.give(f);
    expect(pool.size).toBe(2); // bounded
    expect(pool.take(100).length).toBe(100); // a new size drops the old frames
    expect(pool.size).toBe(0);
  });

  it('hands out frames a direct write can take as they are: aligned, with room up to the next block', () => {
    const pool = new FramePool();
    for (const bytes of [4096, 1_048_576 + 100, 70_001]) {
      const f = pool.take(bytes);
      expect(f.length).toBe(bytes);
      const v = paddedView(f);
      expect(v?.length).toBe(alignUp(bytes));
      expect(v && koffi.address(v) % BigInt(DIRECT_ALIGN)).toBe(0n);
      expect(v!.buffer).toBe(f.buffer); // the same memory: no copy
    }
    expect(paddedView(Buffer.allocUnsafeSlow(5000))).toBeUndefined(); // no room for its padding
  });

  it('lets a writer refill returned chunks without changing a byte of its stream', () => {
    const ps = 4096;
    const pages = 700; // several full chunks and a short last one
    const data = Buffer.alloc(pages * ps);
    for (let i = 0; i < pages; i++) data.fill(i % 251, i * ps, (i + 1) * ps);
    const addrs = Array.from({ length: pages }, (_, i) => 0x10000 + i * ps);
    const write = (pool?: FramePool): Buffer[] => {
      const out: Buffer[] = [];
      const id = ID;
      const w = new SnapshotWriter({
        snapshotId: id,
        maxFrameBytes: 256 * 1024,
        pool,
        // A receiver that copies each frame out and gives it back at once.
        emit: (f) => (out.push(Buffer.from(f)), pool?.give(f)),
      });
      w.begin({ pageSize: ps, pid: 1, startTimeMs: 0, mode: 0, consistency: 0, tenant: 't', host: 'h', cmdline: '' });
      w.beginVma({ start: 0x10000, end: 0x10000 + pages * ps, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '', inode: 0, path: '', vmFlags: '', reason: '', sharedKey: '' });
      w.addPages(addrs, data);
      w.endVma();
      w.end();
      return out;
    };
    const pool = new FramePool();
    const pooled = write(pool);
    expect(pool.reused).toBeGreaterThan(0);
    const fresh = write();
    expect(pooled.length).toBe(fresh.length);
    pooled.forEach((f, i) => expect(f.equals(fresh[i]!), `frame ${i}`).toBe(true)); // toEqual walks bytes: seconds
    const chunks = pooled.map((f) => decodeFrame(f)).filter((f) => f.type === FrameType.PageChunk);
    expect(chunks.length).toBeGreaterThan(2);
  });
});
