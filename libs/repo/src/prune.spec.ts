import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { beyondKeepLast, forgetSnapshots } from './forget';
import { encodeIndexFile, readIndexFile } from './index-file';
import { basename, keys } from './keys';
import type { Manifest } from './manifest';
import type { NodeEntry } from './node-pack';
import type { PackEntry } from './pack';
import { prune } from './prune';
import { Repository } from './repository';
import { addTags, readTags } from './snapshot-refs';
import type { TenantStore } from './tenant-store';
import { BASE, PS, ingest, readBack, type Vma } from './test-helpers';

const HOUR = 3_600_000;

describe('forget and prune on a directory store', () => {
  let dir: string;
  let store: DirectoryObjectStore;
  let repo: Repository;
  // A and B share S (8 pages) at the same addresses; C (another pid) shares nothing.
  const S = randomBytes(8 * PS);
  const a = randomBytes(16 * PS);
  const b = randomBytes(8 * PS);
  const c = randomBytes(8 * PS);
  const memA = [{ start: BASE, data: Buffer.concat([S, a]), zeroPages: 4 }];
  const memB = [{ start: BASE, data: Buffer.concat([S, b]) }];
  const memC = [{ start: BASE + 0x1000_0000, data: c, zeroPages: 8 }];
  let A: Manifest, B: Manifest, C: Manifest;
  /** The pack each snapshot's new pages went to (one flush per snapshot at these sizes), and its node pack. */
  const pack: Record<'A' | 'B' | 'C', string> = { A: '', B: '', C: '' };
  const nodePack: Record<'A' | 'B' | 'C', string> = { A: '', B: '', C: '' };

  const keysUnder = async (prefix: string) => {
    const out = new Map<string, number>();
    for await (const o of store.list(prefix)) out.set(o.key, o.size);
    return out;
  };
  const fresh = () => new Repository(new DirectoryObjectStore(dir)).tenant('acme');
  const indexNames = async () => {
    const out = new Map<string, string[]>();
    for (const k of (await keysUnder(keys.indexes('acme'))).keys()) out.set(k, readIndexFile(await store.get(k), k, () => undefined));
    return out;
  };
  /** Sets an object's modification time on disk (the directory store reports mtimes). */
  const age = (key: string, ms: number) => utimes(join(dir, ...key.split('/')), new Date(Date.now() - ms), new Date(Date.now() - ms));
  const expectRestores = async (t: TenantStore, m: Manifest, mem: Vma[]) => {
    const got = await readBack(t, m);
    expect(got.length).toBe(mem.length);
    got.forEach((buf, i) => expect(buf.equals(mem[i]!.data), `snapshot ${m.snapshotId} VMA ${i}`).toBe(true));
  };

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-prune-'));
    store = new DirectoryObjectStore(dir);
    repo = new Repository(store);
    const before = new Set<string>();
    const newObject = async (prefix: string) => {
      const now = [...(await keysUnder(prefix)).keys()].filter((k) => !before.has(k));
      expect(now.length).toBe(1);
      before.add(now[0]!);
      return now[0]!;
    };
    A = await ingest(repo, 1, memA, 1000);
    [pack.A, nodePack.A] = [await newObject(keys.packs('acme')), await newObject(keys.mapNodes('acme'))];
    B = await ingest(repo, 1, memB, 2000);
    [pack.B, nodePack.B] = [await newObject(keys.packs('acme')), await newObject(keys.mapNodes('acme'))];
    C = await ingest(repo, 2, memC, 3000);
    [pack.C, nodePack.C] = [await newObject(keys.packs('acme')), await newObject(keys.mapNodes('acme'))];
    // One index file a snapshot, naming its pack and its node pack.
    expect([...(await indexNames()).values()].sort()).toEqual((['A', 'B', 'C'] as const).map((x) => [pack[x], nodePack[x]].map(basename)).sort());
    expect(B.counts.newPages).toBe(8); // S deduplicated against A's pack
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it("deletes the temp files of puts whose writer died once older than the grace period; a recent one is kept", async () => {
    const old = join(dir, 't', 'acme', 'packs', 'ab', `${'ab'.repeat(32)}~4242.0123456789ab.tmp`);
    const recent = join(dir, 't', 'acme', 'index', `${'cd'.repeat(32)}~4243.0123456789ab.tmp`);
    const otherTenant = join(dir, 't', 'other', 'packs', `x~1.2.tmp`);
    for (const f of [old, recent, otherTenant]) {
      await mkdir(dirname(f), { recursive: true });
      await writeFile(f, Buffer.alloc(1000));
    }
    await utimes(old, new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));
    await utimes(otherTenant, new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));
    expect((await prune(store, 'acme', { dryRun: true })).unfinishedPuts.deleted).toBe(0);
    expect(existsSync(old)).toBe(true);
    const r = await prune(store, 'acme');
    expect(r.unfinishedPuts).toEqual({ deleted: 1, bytes: 1000 });
    expect([existsSync(old), existsSync(recent), existsSync(otherTenant)]).toEqual([false, true, true]);
    await expectRestores(await fresh(), A, memA);
  });

  it('forget removes the manifest and its tags, and nothing else', async () => {
    const t = await repo.tenant('acme');
    await addTags(t, C.snapshotId, ['nightly']);
    await addTags(t, B.snapshotId, ['nightly']);
    const packsBefore = await keysUnder(keys.packs('acme'));
    await forgetSnapshots(t, [C.snapshotId]);
    expect((await t.listManifests()).map((m) => m.snapshotId)).toEqual([A.snapshotId, B.snapshotId]);
    expect(await readTags(t)).toEqual(new Map([[B.snapshotId, ['nightly']]]));
    expect(await keysUnder(keys.packs('acme'))).toEqual(packsBefore);
    await expect(t.getManifest(C.snapshotId)).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT });
  });

  it('keep-last n forgets, per host and pid, all but the newest n', async () => {
    const t = await repo.tenant('acme');
    const D = await ingest(repo, 1, memB, 4000);
    const all = await t.listManifests();
    expect(beyondKeepLast(all, 1).map((m) => m.snapshotId)).toEqual([A.snapshotId, B.snapshotId]);
    expect(beyondKeepLast(all, 2).map((m) => m.snapshotId)).toEqual([A.snapshotId]);
    expect(beyondKeepLast(all, 3)).toEqual([]);
    expect(() => beyondKeepLast(all, 0)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect(D.pid).toBe(1);
  });

  it('prune after forget deletes what only the forgotten snapshot reached; the rest restores byte for byte', async () => {
    const cNodes = [nodePack.C];
    const kept = [nodePack.A, nodePack.B];
    await forgetSnapshots(await repo.tenant('acme'), [C.snapshotId]);
    const dry = await prune(store, 'acme', { graceMs: 0, dryRun: true });
    const r = await prune(store, 'acme', { graceMs: 0 });
    expect(dry.bytes).toEqual(r.bytes); // nothing repacked: the dry run's figures are exact

    expect(await store.head(pack.C)).toBeUndefined();
    for (const k of cNodes) expect(await store.head(k), k).toBeUndefined();
    for (const k of kept) expect(await store.head(k), k).toBeDefined();
    expect([...(await indexNames()).values()].flat()).not.toContain(basename(pack.C));
    expect([...(await indexNames()).values()].flat()).not.toContain(basename(nodePack.C));
    // One leaf a snapshot here: A's and B's are live, C's node pack goes.
    expect(r).toMatchObject({ dryRun: false, snapshots: 2, packs: { deleted: 1, repacked: 0, written: 0 }, mapNodes: { deleted: 1, live: 2 } });
    // The report's bytes are what is stored now.
    const now = [keys.packs('acme'), keys.indexes('acme'), keys.mapNodes('acme')];
    let stored = 0;
    for (const p of now) for (const size of (await keysUnder(p)).values()) stored += size;
    expect(r.bytes.after).toBe(stored);
    expect(r.bytes.freed).toBe(r.bytes.before - stored);
    expect(r.bytes.freed).toBeGreaterThan(c.length / 2);
    const t = await fresh();
    await expectRestores(t, A, memA);
    await expectRestores(t, B, memB);
    // Nothing left to do: a second prune deletes nothing.
    expect(await prune(store, 'acme', { graceMs: 0 })).toMatchObject({ packs: { deleted: 0, repacked: 0 }, mapNodes: { deleted: 0 }, bytes: { freed: 0 } });
  });

  it("repacks a mostly dead pack: the shared page moves to a new pack and restores, even through an index loaded before", async () => {
    const stale = await repo.tenant('acme'); // its index still says S is in A's pack
    await forgetSnapshots(stale, [A.snapshotId]);
    const r = await prune(store, 'acme', { graceMs: 0 });
    expect(r).toMatchObject({ snapshots: 2, packs: { deleted: 0, repacked: 1, written: 1 }, pagesRepacked: 8, indexFiles: { deleted: 1, written: 1 } });
    expect(await store.head(pack.A)).toBeUndefined();
    const packs = [...(await keysUnder(keys.packs('acme'))).keys()];
    expect(packs.length).toBe(3);
    const moved = packs.find((k) => k !== pack.B && k !== pack.C)!;
    const names = [...(await indexNames()).values()];
    expect(names.flat()).not.toContain(basename(pack.A));
    expect(names).toContainEqual([basename(moved)]);
    expect(names.flat()).not.toContain(basename(nodePack.A)); // A's own leaf went too
    await expectRestores(await fresh(), B, memB);
    await expectRestores(await fresh(), C, memC);
    await expectRestores(stale, B, memB);
  });

  it('leaves a partly dead pack whose live share is above the threshold', async () => {
    await forgetSnapshots(await repo.tenant('acme'), [A.snapshotId]);
    const indexBefore = await indexNames();
    const r = await prune(store, 'acme', { graceMs: 0, repackBelow: 0.2 });
    expect(r.packs).toMatchObject({ deleted: 0, repacked: 0 });
    expect(r.mapNodes.deleted).toBe(1); // A's own leaf goes all the same, in its node pack
    expect(await store.head(nodePack.A)).toBeUndefined();
    expect(await store.head(pack.A)).toBeDefined();
    // A's index file is rewritten without its node pack.
    const flat = (m: Map<string, string[]>) => [...m.values()].flat().sort();
    expect(flat(await indexNames())).toEqual(flat(indexBefore).filter((n) => n !== basename(nodePack.A)));
    await expectRestores(await fresh(), B, memB);
  });

  it('a dry run reports what a run then does, and changes nothing', async () => {
    await forgetSnapshots(await repo.tenant('acme'), [A.snapshotId, C.snapshotId]);
    const before = await keysUnder('t/acme/');
    const dry = await prune(store, 'acme', { graceMs: 0, dryRun: true });
    expect(await keysUnder('t/acme/')).toEqual(before);
    expect(dry).toMatchObject({ dryRun: true, snapshots: 1, packs: { deleted: 1, repacked: 1 }, pagesRepacked: 8 });
    expect(dry.bytes.freed).toBeGreaterThan(0);
    const run = await prune(store, 'acme', { graceMs: 0 });
    expect(run.packs).toMatchObject({ deleted: dry.packs.deleted, repacked: dry.packs.repacked });
    expect(run.mapNodes.deleted).toBe(dry.mapNodes.deleted);
    expect(Math.abs(run.bytes.after - dry.bytes.after)).toBeLessThan(0.05 * dry.bytes.before);
    await expectRestores(await fresh(), B, memB);
  });

  it('spares objects younger than the grace period, and deletes the same kind of object once it is older', async () => {
    const t = await repo.tenant('acme');
    await addTags(t, C.snapshotId, ['old']);
    await forgetSnapshots(t, [A.snapshotId, C.snapshotId]);
    const cObjects = [pack.C, nodePack.C];
    for (const [k, names] of await indexNames()) if (names.includes(basename(pack.C))) cObjects.push(k);
    for (const k of cObjects) await age(k, 2 * HOUR);
    const r = await prune(store, 'acme'); // the default grace: one hour
    for (const k of cObjects) expect(await store.head(k), k).toBeUndefined();
    expect(r.packs).toMatchObject({ deleted: 1, repacked: 0, spared: 1 }); // A's pack is young: not repacked
    expect(r.mapNodes.spared).toBeGreaterThan(0);
    expect(await store.head(pack.A)).toBeDefined();
    await expectRestores(await fresh(), B, memB);
  });

  it('refuses, deleting nothing, when a page-map node a snapshot reaches is missing', async () => {
    await forgetSnapshots(await repo.tenant('acme'), [C.snapshotId]);
    const missing = nodePack.B;
    expect(nodePack.A).not.toBe(missing);
    await store.delete(missing);
    const before = await keysUnder('t/acme/');
    const e = await prune(store, 'acme', { graceMs: 0 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PvError);
    expect(e).toMatchObject({ code: ErrorCodes.OBJECT_NOT_FOUND, details: { key: missing, snapshot: B.snapshotId } });
    expect((e as Error).message).toContain(missing);
    expect((e as Error).message).toContain('deletes nothing');
    expect(await keysUnder('t/acme/')).toEqual(before);
  });

  it('refuses, deleting nothing, when a manifest does not parse, naming it', async () => {
    await forgetSnapshots(await repo.tenant('acme'), [C.snapshotId]);
    await writeFile(join(dir, ...keys.manifest('acme', A.snapshotId).split('/')), '{"format": "pagevault.manif');
    const before = await keysUnder('t/acme/');
    await expect(prune(store, 'acme', { graceMs: 0 })).rejects.toMatchObject({ code: ErrorCodes.OBJECT_CORRUPT, message: expect.stringContaining(keys.manifest('acme', A.snapshotId)) });
    expect(await keysUnder('t/acme/')).toEqual(before);
  });

  it('rewrites an index file that names a deleted pack and a kept one, before deleting it', async () => {
    // One index file for A's and C's packs and node packs, as a consolidated index would have them.
    const entries = new Map<string, PackEntry[]>();
    const nodes = new Map<string, NodeEntry[]>();
    const merged = [...(await indexNames())].filter(([, n]) => n.includes(basename(pack.A)) || n.includes(basename(pack.C)));
    for (const [k] of merged) {
      readIndexFile(await store.get(k), k, (h, at, { pack: p, ...e }) => void (entries.get(p) ?? entries.set(p, []).get(p)!).push({ hash: Buffer.from(h.subarray(at, at + 32)), ...e }),
        undefined, (p, b, at, e) => void (nodes.get(p) ?? nodes.set(p, []).get(p)!).push({ sha: Buffer.from(b.subarray(at, at + 32)), ...e }));
    }
    const idx = encodeIndexFile([...entries].map(([sha, e]) => ({ sha, entries: e })), [...nodes].map(([sha, e]) => ({ sha, entries: e })));
    await store.put(keys.index('acme', idx.sha), idx.bytes);
    for (const [k] of merged) await store.delete(k);
    await forgetSnapshots(await repo.tenant('acme'), [C.snapshotId]);

    const r = await prune(store, 'acme', { graceMs: 0 });
    expect(r).toMatchObject({ packs: { deleted: 1 }, indexFiles: { deleted: 1, written: 1 } });
    expect(await store.head(keys.index('acme', idx.sha))).toBeUndefined();
    const names = [...(await indexNames()).values()];
    expect(names).toContainEqual([pack.A, nodePack.A].map(basename));
    expect(names.flat()).not.toContain(basename(pack.C));
    expect(names.flat()).not.toContain(basename(nodePack.C));
    expect(await store.head(nodePack.C)).toBeUndefined();
    await expectRestores(await fresh(), A, memA);
    await expectRestores(await fresh(), B, memB);
  });

  it('merges the index files of many flushes into one past the threshold; a fresh reader restores from it', async () => {
    expect((await indexNames()).size).toBe(3);
    const dry = await prune(store, 'acme', { graceMs: 0, consolidateAbove: 2, dryRun: true });
    expect(dry.indexFiles).toMatchObject({ deleted: 3, written: 1 });
    expect((await indexNames()).size).toBe(3);
    const below = await prune(store, 'acme', { graceMs: 0, consolidateAbove: 3 });
    expect(below.indexFiles).toMatchObject({ deleted: 0, written: 0 });
    const r = await prune(store, 'acme', { graceMs: 0, consolidateAbove: 2 });
    expect(r.indexFiles).toMatchObject({ stored: 3, deleted: 3, written: 1 });
    expect(r.packs).toMatchObject({ deleted: 0, repacked: 0 });
    const names = [...(await indexNames()).values()];
    expect(names.length).toBe(1);
    expect(names[0]!.sort()).toEqual([pack.A, pack.B, pack.C, nodePack.A, nodePack.B, nodePack.C].map(basename).sort());
    for (const [m, mem] of [[A, memA], [B, memB], [C, memC]] as const) await expectRestores(await fresh(), m, mem);
    // The long-lived repository rebuilds its index from the merged file (a new prune generation) and still dedups.
    const again = await ingest(repo, 1, memB, 4000);
    expect(again.counts.newPages).toBe(0);
  });

  it('keeps an index file its merged replacement comes out identical to (same name): never deletes it', async () => {
    await forgetSnapshots(await repo.tenant('acme'), [B.snapshotId, C.snapshotId]);
    const r = await prune(store, 'acme', { graceMs: 0, consolidateAbove: 1 });
    expect(r.packs.deleted).toBe(2);
    const names = [...(await indexNames()).values()];
    expect(names).toEqual([[pack.A, nodePack.A].map(basename)]);
    expect(r.indexFiles).toMatchObject({ stored: 3, deleted: 2, written: 0 });
    expect(r.bytes.after).toBe([...(await keysUnder('t/acme/')).entries()].filter(([k]) => !k.includes('/snapshots/') && !k.includes('/locks/') && !k.includes('/tags/')).reduce((n, [, b]) => n + b, 0));
    await expectRestores(await fresh(), A, memA);
  });

  it('writes every new pack and index file before it deletes an index file, and index files before packs', async () => {
    await forgetSnapshots(await repo.tenant('acme'), [A.snapshotId, C.snapshotId]);
    const ops: string[] = [];
    const recording = Object.assign(Object.create(store) as DirectoryObjectStore, {
      put: (k: string, body: Uint8Array) => (ops.push(`put ${k}`), store.put(k, body)),
      delete: (k: string) => (ops.push(`delete ${k}`), store.delete(k)),
    });
    const r = await prune(recording, 'acme', { graceMs: 0 });
    expect(r.packs).toMatchObject({ deleted: 1, repacked: 1, written: 1 });
    const last = (what: RegExp) => ops.reduce((at, op, i) => (what.test(op) ? i : at), -1);
    const first = (what: RegExp) => ops.findIndex((op) => what.test(op));
    expect(ops.filter((op) => op.startsWith('put ')).map((op) => op.split('/')[2])).toEqual(['locks', 'packs', 'index', 'locks']);
    expect(last(/^put /)).toBeLessThan(first(/^delete /));
    // The lock is the first write and the last delete; the prune marker is written before anything is deleted.
    expect(ops[0]).toMatch(/^put t\/acme\/locks\/exclusive-/);
    expect(ops.at(-1)).toBe(ops[0]!.replace('put', 'delete'));
    expect(ops[last(/^put /)]).toMatch(/^put t\/acme\/locks\/pruned-/);
    expect(last(/^delete t\/acme\/index\//)).toBeLessThan(first(/^delete t\/acme\/packs\//));
    expect(ops).toContain(`delete ${pack.A}`);
    expect(ops).toContain(`delete ${pack.C}`);
  });

  it('checks every page it moves: a corrupt live page stops prune before it deletes anything', async () => {
    await forgetSnapshots(await repo.tenant('acme'), [A.snapshotId, C.snapshotId]);
    const path = join(dir, ...pack.A.split('/'));
    const bytes = await store.get(pack.A);
    bytes[100]! ^= 0xff; // inside the first blob: S's pages
    await writeFile(path, bytes);
    const before = await keysUnder('t/acme/');
    const e = await prune(store, 'acme', { graceMs: 0 }).catch((x: unknown) => x);
    expect([ErrorCodes.OBJECT_CORRUPT, ErrorCodes.PAGE_HASH_MISMATCH]).toContain((e as PvError).code);
    // The new pack and its index file may have been written; nothing was deleted.
    const after = await keysUnder('t/acme/');
    for (const [k, size] of before) expect(after.get(k), k).toBe(size);
  });

  it('repacks a node pack whose live share is below the threshold: the live leaf moves, the snapshot restores', async () => {
    const v1 = { start: BASE, data: randomBytes(8 * PS) };
    const mem = (v2: Buffer) => [v1, { start: BASE + 0x4000_0000, data: v2 }];
    const X = await ingest(repo, 3, mem(randomBytes(8 * PS)), 1000, 'beta');
    const xPack = [...(await keysUnder(keys.mapNodes('beta'))).keys()];
    expect(xPack.length).toBe(1); // both leaves
    const yMem = mem(randomBytes(8 * PS));
    const Y = await ingest(repo, 3, yMem, 2000, 'beta');
    expect(Y.counts.mapNodesWritten).toBe(1); // v1's leaf is X's
    await forgetSnapshots(await repo.tenant('beta'), [X.snapshotId]);
    // A reader whose index was loaded before the prune, as a restore running through it.
    const stale = await new Repository(new DirectoryObjectStore(dir)).tenant('beta');
    // Half of X's node pack is live: kept below a threshold of 20%, repacked above 90%.
    expect((await prune(store, 'beta', { graceMs: 0, repackBelow: 0.2 })).mapNodes).toMatchObject({ deleted: 0, repacked: 0 });
    const dry = await prune(store, 'beta', { graceMs: 0, repackBelow: 0.9, dryRun: true });
    const r = await prune(store, 'beta', { graceMs: 0, repackBelow: 0.9 });
    expect(r.mapNodes).toMatchObject({ deleted: 0, repacked: 1, written: 1, live: 2 });
    expect(dry.mapNodes).toMatchObject({ repacked: 1, written: 1 });
    expect(await store.head(xPack[0]!)).toBeUndefined();
    expect((await keysUnder(keys.mapNodes('beta'))).size).toBe(2); // Y's and the repacked one
    const fresh = await new Repository(new DirectoryObjectStore(dir)).tenant('beta');
    const got = await readBack(fresh, Y);
    got.forEach((buf, i) => expect(buf.equals(yMem[i]!.data)).toBe(true));
    // The stale reader finds X's node pack gone, rebuilds its index once and reads the moved leaf.
    const again = await readBack(stale, Y);
    again.forEach((buf, i) => expect(buf.equals(yMem[i]!.data)).toBe(true));
    let stored = 0;
    for (const p of [keys.packs('beta'), keys.indexes('beta'), keys.mapNodes('beta')]) for (const size of (await keysUnder(p)).values()) stored += size;
    expect(r.bytes.after).toBe(stored);
  });

  it('deletes an old pack that no index file names (an upload cut off before its index file)', async () => {
    const orphan = keys.pack('acme', 'ab'.repeat(32));
    await store.put(orphan, randomBytes(1000));
    expect((await prune(store, 'acme')).packs).toMatchObject({ deleted: 0, spared: 1 });
    await age(orphan, 2 * HOUR);
    expect((await prune(store, 'acme')).packs).toMatchObject({ deleted: 1, spared: 0 });
    expect(await store.head(orphan)).toBeUndefined();
  });
});
