import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPages } from '@pagevault/capture';
import { ErrorCodes } from '@pagevault/errors';
import { restoreFrames, writeElfCore, writeLiveProcess, writeRawImages, readElfCore } from '@pagevault/restore';
import type { Manifest } from '@pagevault/repo';
import { buildMemtarget, startMemtarget, type Running, type SourceInfo, stopAndWait } from '../restore-outputs/helpers/memtarget';
import { compareCores } from '../restore-outputs/helpers/core-compare';
import { replay, selectRanges } from '../restore-outputs/helpers/capture-frames';
import { FleetPipeline, collect, directDump } from './pipeline-env';

// live process → agent (capture + shipSnapshot) → real Kafka → compactor (CompactionService) → real S3 →
// restorer (restoreFrames) → every output checked against the same stopped process.
const fleet = new FleetPipeline();
const work = mkdtempSync(join(tmpdir(), 'pv-e2e-'));
let src: Running<SourceInfo>;
let first: Manifest;
let firstHashes: import('@pagevault/capture').PageHashTable;

beforeAll(async () => {
  await fleet.start();
  buildMemtarget();
  src = await startMemtarget<SourceInfo>(['source']);
  await stopAndWait(src.info.pid);
  const r = await fleet.snapshot(src.info.pid);
  first = r.manifest;
  firstHashes = r.capture.hashes!;
}, 180_000);

afterAll(async () => {
  await src?.stop();
  await fleet.stop();
  rmSync(work, { recursive: true, force: true });
}, 120_000);

describe('the fleet pipeline through real Kafka and S3', () => {
  it('commits a snapshot whose manifest counts what the agent captured', async () => {
    expect(first.tenant).toBe(fleet.tenant);
    expect(first.counts.dataPages).toBeGreaterThan(50);
    expect(first.counts.newPages).toBeGreaterThan(0);
    expect(fleet.failures).toEqual([]);
  });

  it('restores the stream byte-identical to a direct dump of the same stopped process', async () => {
    const t = await fleet.repo.tenant(fleet.tenant);
    const restored = Buffer.concat((await collect(restoreFrames(t, first))).map((f) => f.raw));
    const dump = await directDump(src.info.pid, first);
    expect(restored.length).toBe(dump.length);
    expect(restored.equals(dump)).toBe(true);
  });

  it('restores raw images equal to what process_vm_readv reads from the process', async () => {
    const t = await fleet.repo.tenant(fleet.tenant);
    const dir = join(work, 'raw');
    await writeRawImages(restoreFrames(t, first), dir);
    const layout = JSON.parse(readFileSync(join(dir, 'layout.json'), 'utf8')) as { vmas: { index: number; start: number; image: string | null; pages: { data: number } }[] };
    let checked = 0;
    const ps = first.pageSize;
    for (const v of first.vmas.filter((x) => x.pages.data > 0)) {
      const image = readFileSync(join(dir, readdirSync(dir).find((f) => f.startsWith(`vma-${v.index}-`))!));
      const addrs: number[] = [];
      for (let a = v.start; a < v.end; a += ps) if (image.subarray(a - v.start, a - v.start + ps).some((b) => b !== 0)) addrs.push(a);
      const live = readPages(src.info.pid, addrs);
      addrs.forEach((a, i) => expect(live.compare(image, a - v.start, a - v.start + ps, i * ps, (i + 1) * ps), `page 0x${a.toString(16)}`).toBe(0));
      checked += addrs.length;
    }
    expect(layout.vmas.length).toBe(first.vmas.length);
    expect(checked).toBeGreaterThan(50);
  });

  it('restores an ELF core that gdb reads the markers from, matching gcore of the same process', async () => {
    const t = await fleet.repo.tenant(fleet.tenant);
    const ours = join(work, 'ours.core');
    await writeElfCore(restoreFrames(t, first), ours);
    const out = execFileSync('gdb', ['-batch', '-nx', ...src.info.markers.flatMap((m) => ['-ex', `x/s ${m.addr}`]), buildMemtarget(), ours], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, killSignal: 'SIGKILL' });
    for (const m of src.info.markers) expect(out).toMatch(new RegExp(`^${m.addr}[^:\\n]*:\\s+"${m.text}"$`, 'm'));
    execFileSync('gcore', ['-o', join(work, 'gcore'), String(src.info.pid)], { stdio: 'ignore' });
    const theirs = join(work, `gcore.${src.info.pid}`);
    const cmp = compareCores(ours, await readElfCore(ours), theirs, await readElfCore(theirs), first.pageSize);
    expect(cmp.mismatches).toEqual([]);
    expect(cmp.bothPages).toBeGreaterThan(50);
  });

  it('writes the pages into a prepared live process, which ends byte-equal', async () => {
    const t = await fleet.repo.tenant(fleet.tenant);
    const regions = src.info.regions.map((r) => `${r.start}:${r.pages}:${r.prot}`);
    const target = await startMemtarget<{ pid: number }>(['target', ...regions]);
    try {
      const ranges = src.info.regions.map((r) => ({ start: parseInt(r.start, 16), end: parseInt(r.start, 16) + r.pages * first.pageSize }));
      const stats = await writeLiveProcess(replay(selectRanges(await collect(restoreFrames(t, first)), ranges)), target.info.pid);
      expect(stats.verifiedPages).toBeGreaterThan(0);
      for (const r of src.info.regions) {
        const a = parseInt(r.start, 16);
        const addrs = Array.from({ length: r.pages }, (_, i) => a + i * first.pageSize);
        expect(readPages(target.info.pid, addrs).equals(readPages(src.info.pid, addrs)), `region ${r.start}`).toBe(true);
      }
    } finally {
      await target.stop();
    }
  });

  it('stores only what changed in an incremental of the same process', async () => {
    const r = await fleet.snapshot(src.info.pid, { id: first.snapshotId, hashes: firstHashes });
    expect(r.manifest.parentId).toBe(first.snapshotId);
    expect(r.manifest.counts.parentPages).toBe(first.counts.dataPages);
    expect(r.manifest.counts.newPages).toBe(0);
    const t = await fleet.repo.tenant(fleet.tenant);
    const restored = Buffer.concat((await collect(restoreFrames(t, r.manifest))).map((f) => f.raw));
    expect(restored.equals(await directDump(src.info.pid, r.manifest))).toBe(true);
  });

  it('names an unknown snapshot', async () => {
    const t = await fleet.repo.tenant(fleet.tenant);
    await expect(t.getManifest('0'.repeat(32))).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT });
  });
});

