import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { captureSnapshot, readPages } from '@pagevault/capture';
import { allData, collectingWriter, decodeSnapshot } from './helpers/frames';
import { addr, startTarget, type BigInfo } from './helpers/target-process';

/** KiB of a smaps_rollup field. */
const rollup = (pid: number, field: string): number =>
  Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]);

describe('pages shared copy-on-write with a forked child', () => {
  it('are captured without being copied in the target', async () => {
    const t = await startTarget<BigInfo>(['big', '16', 'cow']);
    try {
      const { pid, pageSize: ps } = t.info;
      const sharedBefore = rollup(pid, 'Shared_Dirty');
      expect(sharedBefore).toBeGreaterThanOrEqual(16 * 1024);
      const { writer, frames, snapshotId } = collectingWriter();
      const r = await captureSnapshot({ pid, writer, tenant: 't', host: 'h' });
      expect(r.stats.nonExclusivePages).toBeGreaterThanOrEqual(t.info.bytes / ps);
      // Had they been read with process_vm_readv, the kernel would have unshared (copied) each one.
      expect(rollup(pid, 'Shared_Dirty')).toBe(sharedBefore);
      expect(rollup(pid, 'Private_Clean')).toBeLessThan(1024);
      const data = allData(decodeSnapshot(frames, snapshotId));
      const base = addr(t.info.addr);
      const sample = [0, 1, 777, t.info.bytes / ps - 1].map((i) => base + i * ps);
      const live = readPages(pid, sample, { useProcMem: true });
      sample.forEach((a, i) => expect(data.get(a)).toEqual(live.subarray(i * ps, (i + 1) * ps)));
    } finally {
      await t.stop();
    }
  });
});
