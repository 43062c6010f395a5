import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramePool, SnapshotWriter, frameSealer, newSnapshotId } from '@pagevault/format';
import { captureSnapshot } from '@pagevault/capture';
import { decodeSnapshot, vmaAt, type DecodedSnapshot } from './helpers/frames';
import { startTarget, type Target } from './helpers/target-process';

interface Interleaved {
  pid: number;
  pageSize: number;
  addr: string;
  pages: number;
}

/**
 * The agent's path: default batches, frames from a pool, CRCs on the sealer's helper thread, pages read
 * straight into their chunk frame. Every third page of the region is zero, so nearly every batch has
 * pages squeezed out from between data pages that must then sit at the right place with the right address.
 */
describe('capture straight into frames (the agent path)', () => {
  let t: Target<Interleaved>;
  let snap: DecodedSnapshot;
  const PAGES = 3001;

  beforeAll(async () => {
    t = await startTarget<Interleaved>(['interleaved', String(PAGES)]);
    const frames: Buffer[] = [];
    const pool = new FramePool(4); // few frames: they are refilled while the sealer may still read others
    const snapshotId = newSnapshotId();
    const writer = new SnapshotWriter({
      snapshotId, pool, sealer: frameSealer(),
      emit: (f) => {
        frames.push(Buffer.from(f)); // a copy, then the frame goes back to the pool, as a spool does
        pool.give(f);
      },
    });
    await captureSnapshot({ pid: t.info.pid, writer, tenant: 't', host: 'h' });
    snap = decodeSnapshot(frames, snapshotId);
  });
  afterAll(async () => {
    await t?.stop();
  });

  it('sends each data page at its address with its contents, and each zero page as a zero run', () => {
    expect(snap.state).toBe('end');
    const ps = t.info.pageSize;
    const base = parseInt(t.info.addr, 16);
    const v = vmaAt(snap, base);
    const zero = new Set(v.zero);
    const wrong: string[] = [];
    for (let i = 0; i < PAGES; i++) {
      const a = base + i * ps;
      if (i % 3 === 0) {
        if (!zero.has(a) || v.data.has(a)) wrong.push(`page ${i} should be a zero run`);
        continue;
      }
      const d = v.data.get(a);
      const want = Buffer.alloc(ps, (i % 251) + 1);
      want.writeBigInt64LE(BigInt(i), 0);
      if (!d || !d.equals(want)) wrong.push(`page ${i} ${d ? 'differs' : 'missing'}`);
    }
    expect(wrong.slice(0, 5)).toEqual([]);
    const inRegion = [...v.data.keys()].filter((a) => a >= base && a < base + PAGES * ps);
    expect(inRegion.length).toBe(PAGES - Math.ceil(PAGES / 3));
  });
});
