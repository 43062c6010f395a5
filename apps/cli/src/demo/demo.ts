import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readPages } from '@pagevault/capture';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { restoreFrames, restoreSnapshot, writeRawImages, writeStream } from '@pagevault/restore';
import type { Manifest, TenantStore } from '@pagevault/repo';
import { openContext, type GlobalOptions } from '../context';
import { dumpProcess } from '../commands/restore';
import { takeSnapshot, type SnapshotOutcome } from '../commands/snapshot';
import { bytes, printJson, printTable } from '../output';
import { Pipeline } from '../pipeline';
import { SampleProcess } from './sample-process';

/**
 * `pagevault demo`: a sample process, a full snapshot, a change, an incremental snapshot, both restored
 * and verified against the stopped process (the restored stream byte-identical to a direct dump, raw
 * images equal to process_vm_readv), and a table of what it cost.
 */
export async function runDemo(g: GlobalOptions): Promise<void> {
  const scratch = await mkdtemp(join(tmpdir(), 'pagevault-demo-'));
  const ctx = openContext({ ...g, store: g.store ?? join(scratch, 'store'), tenant: g.tenant, keepPageHashes: true });
  const pipe = new Pipeline(ctx);
  await pipe.start();
  const proc = await SampleProcess.start();
  const rows: Record<string, unknown>[] = [];
  try {
    const t = await ctx.tenant();
    const say = (s: string) => !ctx.json && process.stdout.write(`${s}\n`);
    say(`sample process ${proc.pid}; store ${ctx.storeConfig.kind === 'dir' ? ctx.storeConfig.dir : 's3'}`);
    await proc.stop();
    const first = await takeSnapshot(ctx, pipe, { pid: proc.pid });
    rows.push(await verify(t, first, proc.pid, scratch, 'full'));
    proc.cont();
    await proc.change();
    await proc.stop();
    const second = await takeSnapshot(ctx, pipe, { pid: proc.pid, parent: first.manifest.snapshotId });
    rows.push(await verify(t, second, proc.pid, scratch, 'incremental'));
    if (ctx.json) printJson(rows);
    else {
      printTable(rows);
      say(`\nboth snapshots restored and verified against process ${proc.pid}`);
    }
  } finally {
    await proc.kill();
    await pipe.stop();
    if (!g.store) await rm(scratch, { recursive: true, force: true });
  }
}

async function verify(t: TenantStore, s: SnapshotOutcome, pid: number, scratch: string, label: string): Promise<Record<string, unknown>> {
  const m: Manifest = s.manifest;
  const dir = join(scratch, m.snapshotId);
  const dump = `${dir}.dump`;
  await dumpProcess(pid, dump, { id: m.snapshotId, timeMs: m.startTimeMs, tenant: m.tenant, host: m.host });
  const t0 = performance.now();
  await writeStream(restoreFrames(t, m), `${dir}.stream`);
  const restoreMs = performance.now() - t0;
  const [a, b] = await Promise.all([readFile(dump), readFile(`${dir}.stream`)]);
  if (!a.equals(b)) throw new PvError(ErrorCodes.SNAPSHOT_FAILED, `restored stream of ${m.snapshotId} differs from a direct dump of the stopped process`);
  await writeRawImages(restoreSnapshot(t, m), `${dir}.raw`);
  let pagesChecked = 0;
  for (const v of m.vmas) {
    const img = (await readdir(`${dir}.raw`)).find((f) => f.startsWith(`vma-${v.index}-`));
    if (!img || v.pages.data === 0) continue;
    const image = await readFile(join(`${dir}.raw`, img));
    const addrs: number[] = [];
    for (let a2 = v.start; a2 < v.end; a2 += m.pageSize) {
      const off = a2 - v.start;
      if (!image.subarray(off, off + m.pageSize).every((x) => x === 0)) addrs.push(a2);
    }
    const live = readPages(pid, addrs);
    addrs.forEach((a2, i) => {
      if (live.compare(image, a2 - v.start, a2 - v.start + m.pageSize, i * m.pageSize, (i + 1) * m.pageSize) !== 0) {
        throw new PvError(ErrorCodes.SNAPSHOT_FAILED, `raw image of ${m.snapshotId} differs from the process at 0x${a2.toString(16)}`);
      }
    });
    pagesChecked += addrs.length;
  }
  const c = m.counts;
  const logical = (c.dataPages + c.zeroPages) * m.pageSize;
  return {
    snapshot: `${label} ${m.snapshotId.slice(0, 8)}`,
    logical: bytes(logical),
    data: c.dataPages,
    zero: c.zeroPages,
    file: c.filePages,
    'same-as-parent': c.parentPages,
    'new pages': c.newPages,
    stored: bytes(c.newBytes + c.mapBytesWritten),
    dedup: `${(logical / Math.max(1, c.newBytes + c.mapBytesWritten)).toFixed(1)}x`,
    frozen: `${s.capture.freezeMs.toFixed(0)} ms`,
    snapshot_ms: s.ms.toFixed(0),
    restore_ms: restoreMs.toFixed(0),
    verified: `${pagesChecked} pages, stream identical`,
  };
}
