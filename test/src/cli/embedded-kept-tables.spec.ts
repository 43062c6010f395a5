import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPages, writePages } from '@pagevault/capture';
import { openContext, Pipeline, takeSnapshot } from '@pagevault/cli';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMemtarget, startMemtarget, type Running, type SourceInfo, stopAndWait } from '../restore-outputs/helpers/memtarget';
import { CLI } from './cli-env';

const work = mkdtempSync(join(tmpdir(), 'pv-kept-'));
let src: Running<SourceInfo>;

beforeAll(async () => {
  buildMemtarget();
  src = await startMemtarget<SourceInfo>(['source']);
  await stopAndWait(src.info.pid);
}, 60_000);

afterAll(async () => {
  await src?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('embedded pipeline keeping page tables in memory', () => {
  it('finds the same changed pages from its kept XXH3 table as from the SHA-256 table rebuilt from the store', async () => {
    const ctx = openContext({ store: join(work, 'store'), tenant: 't', host: 'h', keepPageHashes: true });
    const oneShot = { ...ctx, keptHashes: undefined };
    const pipe = new Pipeline(ctx);
    await pipe.start();
    try {
      const pid = src.info.pid;
      const first = await takeSnapshot(ctx, pipe, { pid });
      const table = ctx.keptHashes!.get(first.manifest.snapshotId)!;
      expect(table.kind).toBe('xxh3-128');
      expect(table.size).toBe(first.capture.dataPages);
      // One byte of one marker page changes while the process is stopped.
      const ps = src.info.pageSize;
      const page = Number(BigInt(src.info.markers[0]!.addr)) - (Number(BigInt(src.info.markers[0]!.addr)) % ps);
      const bytes = readPages(pid, [page], { pageSize: ps });
      bytes[100] ^= 0x5a;
      writePages(pid, [page], bytes);
      const fromMemory = await takeSnapshot(ctx, pipe, { pid, parent: first.manifest.snapshotId });
      const fromStore = await takeSnapshot(oneShot, pipe, { pid, parent: first.manifest.snapshotId });
      expect(fromMemory.capture.dataPages).toBe(1);
      expect(fromStore.capture.dataPages).toBe(1);
      expect(fromMemory.capture.parentPages).toBe(first.capture.dataPages - 1);
      expect(fromStore.capture.parentPages).toBe(fromMemory.capture.parentPages);
      expect(ctx.keptHashes!.has(fromMemory.manifest.snapshotId)).toBe(true);
    } finally {
      await pipe.stop();
    }
  }, 120_000);

  it('`pagevault demo` snapshots a sample process twice, restores both and verifies them', () => {
    const out = execFileSync(process.execPath, [CLI, '--json', '--store', join(work, 'demo'), 'demo'], { encoding: 'utf8', timeout: 120_000 });
    const rows = JSON.parse(out) as Record<string, string | number>[];
    expect(rows.map((r) => String(r['snapshot']).split(' ')[0])).toEqual(['full', 'incremental']);
    expect(rows.every((r) => /pages, stream identical$/.test(String(r['verified'])))).toBe(true);
    expect(Number(rows[1]!['same-as-parent'])).toBeGreaterThan(Number(rows[1]!['new pages']) * 4);
  }, 180_000);
});
