import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Consistency, SnapshotWriter, newSnapshotId } from '@pagevault/format';
import { allThreadsStopped, captureSnapshot } from '@pagevault/capture';
import { decodeSnapshot, vmaAt } from './helpers/frames';
import { addr, startFixture, type FixtureInfo, type Target } from './helpers/target-process';

/** A writer that notices when pages of [lo, hi) are handed to it. */
class SpyWriter extends SnapshotWriter {
  sawRange = false;
  constructor(
    emit: (f: Buffer) => void,
    id: Uint8Array,
    private readonly lo: number,
    private readonly hi: number,
  ) {
    super({ snapshotId: id, emit });
  }
  override addPages(addrs: ArrayLike<number>, data: Buffer, offset?: number, n?: number): void {
    for (let i = 0; i < addrs.length; i++)
      if (addrs[i]! >= this.lo && addrs[i]! < this.hi) this.sawRange = true;
    super.addPages(addrs, data, offset, n);
  }
}

describe('live capture', () => {
  let t: Target<FixtureInfo>;
  beforeEach(async () => {
    t = await startFixture();
  });
  afterEach(async () => {
    await t.stop();
  });

  it('reads without stopping the target', async () => {
    const frames: Buffer[] = [];
    let everStopped = false;
    const snapshotId = newSnapshotId();
    const writer = new SnapshotWriter({
      snapshotId,
      emit: (f) => {
        frames.push(f);
        everStopped ||= allThreadsStopped(t.info.pid);
      },
    });
    const r = await captureSnapshot({
      pid: t.info.pid,
      writer,
      tenant: 't',
      host: 'h',
      consistency: Consistency.Live,
    });
    expect(everStopped).toBe(false);
    expect(r.stats.freezeMs).toBe(0);
    expect(decodeSnapshot(frames, snapshotId).begin.consistency).toBe(Consistency.Live);
  });

  it('skips pages unmapped while it reads them, and still ends a valid stream', async () => {
    const ps = t.info.pageSize;
    const base = addr(t.info.marker);
    const frames: Buffer[] = [];
    const snapshotId = newSnapshotId();
    const writer = new SpyWriter((f) => frames.push(f), snapshotId, base, base + 16 * ps);
    let unmapped = false;
    const r = await captureSnapshot({
      pid: t.info.pid,
      writer,
      tenant: 't',
      host: 'h',
      consistency: Consistency.Live,
      batchPages: 4,
      drain: async () => {
        if (writer.sawRange && !unmapped) {
          unmapped = true;
          expect(await t.ask('u')).toBe('unmapped');
        }
      },
    });
    expect(unmapped).toBe(true);
    expect(r.stats.skippedByReason['vanished']).toBeGreaterThanOrEqual(8);
    const s = decodeSnapshot(frames, snapshotId);
    expect(s.state).toBe('end');
    expect(vmaAt(s, base).data.has(base)).toBe(true);
    expect(vmaAt(s, base).data.has(base + 15 * ps)).toBe(false);
  });
});
