import { mkdtemp, readdir, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, PvError } from '@pagevault/errors';
import {
  Consistency, SnapshotMode, SnapshotWriter, VmaKind, decodeFrame, idToHex, newSnapshotId, type SnapshotBegin,
} from '@pagevault/format';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { Repository, SnapshotIngest, keys } from '@pagevault/repo';
import { walkSnapshot, type SnapshotVisitor } from './outputs/snapshot-walk';
import { restoreFrames, restoreSnapshot } from './restore-frames';

const PS = 4096;
const BASE = 0x7f00_0000_0000;

/** A memory state: pages of one anonymous VMA, each page either a fill byte or 0 (zero page). */
function writeSnapshot(id: Uint8Array, fills: number[], parent?: { id: Uint8Array; same: (i: number) => boolean }): Buffer[] {
  const frames: Buffer[] = [];
  const w = new SnapshotWriter({ snapshotId: id, emit: (f) => frames.push(f), maxFrameBytes: 64 * 1024 });
  const begin: SnapshotBegin = {
    pageSize: PS, pid: 42, startTimeMs: 1_700_000_000_000, mode: parent ? SnapshotMode.Incremental : SnapshotMode.Full,
    consistency: Consistency.Frozen, tenant: 'acme', host: 'h1', cmdline: 'target\0--x',
    ...(parent ? { parentId: parent.id } : {}),
  };
  w.begin(begin);
  w.beginVma({ start: BASE, end: BASE + fills.length * PS, prot: 3, flags: 0, pgoff: 0, kind: VmaKind.PrivateAnon, dev: '00:00', inode: 0, path: '', vmFlags: 'rd wr mr mw me ac', reason: '', sharedKey: '' });
  fills.forEach((f, i) => {
    const addr = BASE + i * PS;
    if (parent?.same(i)) w.addParent(addr, 1);
    else if (f === 0) w.addZero(addr, 1);
    else w.addPages([addr], Buffer.alloc(PS, f));
  });
  w.endVma();
  w.end();
  return frames;
}

async function ingest(repo: Repository, id: Uint8Array, frames: Buffer[]) {
  const ing = new SnapshotIngest(repo, id);
  let m;
  for (const f of frames) m = (await ing.accept(decodeFrame(f, 64 * 1024))) ?? m;
  return m!;
}

async function restore(repo: Repository, id: Uint8Array): Promise<Buffer> {
  const t = await repo.tenant('acme');
  const out: Buffer[] = [];
  for await (const f of restoreFrames(t, await t.getManifest(idToHex(id)), { maxFrameBytes: 64 * 1024, batchPages: 7 })) out.push(f.raw);
  return Buffer.concat(out);
}

describe('restoreFrames', () => {
  let dir: string;
  let repo: Repository;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-restore-'));
    repo = new Repository(new DirectoryObjectStore(dir));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const fills = Array.from({ length: 40 }, (_, i) => (i % 5 === 0 ? 0 : (i % 7) + 1));

  it('restores a full snapshot byte-identical to the stream that was ingested', async () => {
    const id = newSnapshotId();
    const frames = writeSnapshot(id, fills);
    const m = await ingest(repo, id, frames);
    expect(m.counts.zeroPages).toBe(8);
    expect(m.counts.newPages).toBe(7); // seven distinct page contents: everything else deduplicated
    expect(await restore(repo, id)).toEqual(Buffer.concat(frames));
  });

  it('resolves same-as-parent pages so an incremental restores as the full stream of its state', async () => {
    const p = newSnapshotId();
    await ingest(repo, p, writeSnapshot(p, fills));
    const next = fills.map((f, i) => (i === 3 ? 0x55 : f));
    const c = newSnapshotId();
    const m = await ingest(repo, c, writeSnapshot(c, next, { id: p, same: (i) => i !== 3 }));
    expect(m.counts.parentPages).toBe(39);
    expect(m.counts.newPages).toBe(1);
    expect(await restore(repo, c)).toEqual(Buffer.concat(writeSnapshot(c, next)));
  });

  it('reuses the page-map nodes of unchanged memory', async () => {
    const a = newSnapshotId();
    const b = newSnapshotId();
    const ma = await ingest(repo, a, writeSnapshot(a, fills));
    const mb = await ingest(repo, b, writeSnapshot(b, fills));
    expect(ma.counts.mapNodesWritten).toBeGreaterThan(0);
    expect(mb.counts.mapNodesWritten).toBe(0);
    expect(mb.vmas[0]!.map).toEqual(ma.vmas[0]!.map);
  });

  it('fails a snapshot whose parent does not exist with PV_PARENT_MISSING', async () => {
    const c = newSnapshotId();
    await expect(ingest(repo, c, writeSnapshot(c, fills, { id: newSnapshotId(), same: () => true }))).rejects.toMatchObject({ code: ErrorCodes.PARENT_MISSING });
  });

  /** What a visitor sees, page by page: chunking differs between frames and a direct visit, nothing else may. */
  function recorder() {
    const log: string[] = [];
    const v: SnapshotVisitor = {
      begin: (b, id) => void log.push(`begin ${idToHex(id)} ${b.pid} ${b.cmdline} ${b.mode}`),
      vmaBegin: (x) => void log.push(`vma ${x.index} ${x.start}-${x.end}`),
      pages: (_x, addrs, data) => addrs.forEach((a, i) => log.push(`page ${a} ${data.subarray(i * PS, (i + 1) * PS).toString('hex').slice(0, 8)} ${data[i * PS + PS - 1]}`)),
      zeroRuns: (_x, runs) => runs.forEach((r) => { for (let k = 0; k < r.pages; k++) log.push(`zero ${r.start + k * PS}`); }),
      fileRuns: (_x, runs) => runs.forEach((r) => { for (let k = 0; k < r.pages; k++) log.push(`file ${r.start + k * PS}`); }),
      vmaEnd: (x) => void log.push(`end-vma ${x.index}`),
      end: (e) => void log.push(`end ${e.vmaCount} ${e.dataPages} ${e.zeroPages} ${e.filePages}`),
    };
    return { log, v };
  }

  it('visits a stored snapshot directly exactly as a walk of its frames does', async () => {
    const p = newSnapshotId();
    await ingest(repo, p, writeSnapshot(p, fills));
    const c = newSnapshotId();
    await ingest(repo, c, writeSnapshot(c, fills.map((f, i) => (i === 3 ? 0x55 : f)), { id: p, same: (i) => i !== 3 }));
    const t = await repo.tenant('acme');
    const m = await t.getManifest(idToHex(c));
    const viaFrames = recorder();
    const direct = recorder();
    await walkSnapshot(restoreFrames(t, m, { maxFrameBytes: 64 * 1024, batchPages: 7 }), viaFrames.v);
    const src = restoreSnapshot(t, m, { batchPages: 3 });
    expect('visit' in src).toBe(true);
    await walkSnapshot(src, direct.v);
    expect(direct.log.filter((l) => l.startsWith('page')).length).toBe(32);
    expect(direct.log).toEqual(viaFrames.log);
    // Iterated, the same source is the canonical stream.
    const out: Buffer[] = [];
    for await (const f of restoreSnapshot(t, m, { maxFrameBytes: 64 * 1024 })) out.push(f.raw);
    expect(Buffer.concat(out)).toEqual(await restore(repo, c));
  });

  it('names a deleted pack and detects a flipped byte in a pack', async () => {
    const id = newSnapshotId();
    await ingest(repo, id, writeSnapshot(id, fills));
    const packDir = join(dir, 't/acme/packs');
    const [sub] = await readdir(packDir);
    const [name] = await readdir(join(packDir, sub!));
    const path = join(packDir, sub!, name!);
    const bytes = await readFile(path);
    bytes[10]! ^= 0xff;
    await writeFile(path, bytes);
    const visit = async () => {
      const t = await new Repository(new DirectoryObjectStore(dir)).tenant('acme');
      return restoreSnapshot(t, await t.getManifest(idToHex(id))).visit({}).catch((e: unknown) => e);
    };
    const fresh = new Repository(new DirectoryObjectStore(dir));
    for (const err of [await restore(fresh, id).catch((e: unknown) => e), await visit()]) {
      expect(err).toBeInstanceOf(PvError);
      expect([ErrorCodes.OBJECT_CORRUPT, ErrorCodes.PAGE_HASH_MISMATCH]).toContain((err as PvError).code);
    }
    await rm(path);
    const gone = await restore(new Repository(new DirectoryObjectStore(dir)), id).catch((e: unknown) => e);
    for (const err of [gone, await visit()]) {
      expect(err).toMatchObject({ code: ErrorCodes.OBJECT_NOT_FOUND });
      expect((err as Error).message).toContain(keys.pack('acme', name!));
    }
  });
});
