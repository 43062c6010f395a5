import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { captureSnapshot, readPages } from '@pagevault/capture';
import { allData, collectingWriter, decodeSnapshot } from './helpers/frames';
import { addr, startTarget, type BigInfo } from './helpers/target-process';

/**
 * KiB of an smaps field for the one mapping that holds `at`: the test region only, so the target's or its
 * child's own activity elsewhere (a stack page written, a COW break in libc data) cannot move the figure.
 */
function smapsField(pid: number, at: number, field: string): number {
  const blocks = readFileSync(`/proc/${pid}/smaps`, 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
  const block = blocks.find((b) => {
    const [lo, hi] = b.slice(0, b.indexOf(' ')).split('-').map((x) => parseInt(x, 16));
    return lo! <= at && at < hi!;
  });
  if (!block) throw new Error(`no mapping of process ${pid} holds 0x${at.toString(16)}`);
  return Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(block)![1]);
}

describe('pages shared copy-on-write with a forked child', () => {
  it('are captured without being copied in the target', async () => {
    const t = await startTarget<BigInfo>(['big', '16', 'cow']);
    try {
      const { pid, pageSize: ps } = t.info;
      const base = addr(t.info.addr);
      const sharedBefore = smapsField(pid, base, 'Shared_Dirty');
      const privateBefore = smapsField(pid, base, 'Private_Dirty');
      expect(sharedBefore).toBeGreaterThanOrEqual(16 * 1024);
      const { writer, frames, snapshotId } = collectingWriter();
      const r = await captureSnapshot({ pid, writer, tenant: 't', host: 'h' });
      expect(r.stats.nonExclusivePages).toBeGreaterThanOrEqual(t.info.bytes / ps);
      // Had they been read with process_vm_readv, the kernel would have unshared (copied) each one.
      expect(smapsField(pid, base, 'Shared_Dirty')).toBe(sharedBefore);
      expect(smapsField(pid, base, 'Private_Dirty')).toBe(privateBefore);
      const data = allData(decodeSnapshot(frames, snapshotId));
      const sample = [0, 1, 777, t.info.bytes / ps - 1].map((i) => base + i * ps);
      const live = readPages(pid, sample, { useProcMem: true });
      sample.forEach((a, i) => expect(data.get(a)).toEqual(live.subarray(i * ps, (i + 1) * ps)));
    } finally {
      await t.stop();
    }
  });
});
