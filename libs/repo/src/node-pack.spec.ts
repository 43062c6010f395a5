import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { encodeIndexFile, readIndexFile } from './index-file';
import { keys } from './keys';
import { encodeNodePack, readNodePackTrailer } from './node-pack';
import { PageKind, PageList } from './page-list';
import { buildPageMap, decodeMapNode, readPageMap, type MapNode } from './page-map';
import { Repository } from './repository';
import { BASE, PS, countingStore, ingest, readBack } from './test-helpers';

/** The nodes of one VMA's map of `pages` random pages. */
const nodesOf = (pages: number, at = BASE): MapNode[] => {
  const l = new PageList(PS);
  l.add(at, pages, PageKind.Data, randomBytes(pages * 32), 0);
  const out: MapNode[] = [];
  buildPageMap(l, l.order('t'), (n) => out.push(n));
  return out;
};

describe('node packs', () => {
  it('hold nodes back to back behind a trailer that finds each; a cut trailer is corrupt', () => {
    const nodes = [...nodesOf(3000), ...nodesOf(5)];
    const p = encodeNodePack(nodes);
    const entries = readNodePackTrailer(p.bytes, 'k');
    expect(entries.map((e) => e.sha.toString('hex'))).toEqual(nodes.map((n) => n.sha));
    entries.forEach((e, i) => expect(p.bytes.subarray(e.offset, e.offset + e.length).equals(nodes[i]!.bytes)).toBe(true));
    expect(() => readNodePackTrailer(p.bytes.subarray(0, p.bytes.length - 1), 'k')).toThrow(expect.objectContaining({ code: ErrorCodes.OBJECT_CORRUPT }));
  });

  it('are listed by index files (version 3) next to page packs; a file cut in its nodes is corrupt', () => {
    const p = encodeNodePack(nodesOf(2000));
    const f = encodeIndexFile([], [p]).bytes;
    expect(f.readUInt32LE(4)).toBe(3);
    const got: [string, string, number, number][] = [];
    const names = readIndexFile(f, 'k', () => undefined, undefined, (pack, b, at, e) => got.push([pack, b.toString('hex', at, at + 32), e.offset, e.length]));
    expect(names).toEqual([p.sha]);
    expect(got).toEqual(p.entries.map((e) => [p.sha, e.sha.toString('hex'), e.offset, e.length]));
    expect(() => readIndexFile(f.subarray(0, f.length - 4), 'k', () => undefined)).toThrow(expect.objectContaining({ code: ErrorCodes.OBJECT_CORRUPT }));
  });
});

describe('page-map nodes in the store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-nodes-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const counting = () => countingStore(dir);

  it('a snapshot of a thousand VMAs writes one node pack and one index file, and restores through them', async () => {
    const { store, n } = counting();
    const vmas = Array.from({ length: 1000 }, (_, i) => ({ start: BASE + i * 0x40_0000, data: randomBytes(2 * PS) }));
    const m = await ingest(new Repository(store), 1, vmas, 1);
    expect(n).toMatchObject({ 'put packs': 1, 'put maps': 1, 'put index': 1, 'put snapshots': 1 });
    expect(m.counts.mapNodesWritten).toBe(1000);
    const t = await new Repository(store).tenant('acme');
    const before = n['get maps'] ?? 0;
    expect(Buffer.concat(await readBack(t, m)).equals(Buffer.concat(vmas.map((v) => v.data)))).toBe(true);
    expect(n['get maps']! - before).toBe(1); // the node pack, read whole once
  });

  it('one huge VMA’s nodes go out in node packs of the size asked, not one pack of them all', async () => {
    const { store, n } = counting();
    const data = randomBytes(6 * 1024 * PS); // six leaves of distinct hashes, ~33 KiB each
    const small = randomBytes(16 * PS);
    const m = await ingest(new Repository(store), 1, [{ start: BASE, data }, { start: BASE + 0x1_0000_0000, data: small }], 1, 'acme', undefined, { nodePackBytes: 64 << 10 });
    expect(n['put maps']).toBeGreaterThanOrEqual(3);
    let largest = 0;
    for await (const o of store.list(keys.mapNodes('acme'))) largest = Math.max(largest, o.size);
    expect(largest).toBeLessThan((64 << 10) + (40 << 10)); // the size asked, one leaf and a trailer
    // Node packs going out mid-snapshot leave the page pack being filled open: one pack under the target.
    let partial = 0;
    for await (const o of store.list(keys.packs('acme'))) if (o.size < 12 << 20) partial++;
    expect(partial).toBe(1);
    const t = await new Repository(store).tenant('acme');
    const got = await readBack(t, m);
    expect([got[0]!.equals(data), got[1]!.equals(small)]).toEqual([true, true]);
  });

  it('a child reads the nodes of a parent another compactor committed after its index was loaded', async () => {
    const store = new DirectoryObjectStore(dir);
    const other = new Repository(store, { recentMapsBytes: 0 });
    await other.tenant('acme'); // index loaded now, empty
    const data = randomBytes(64 * PS);
    const parent = await ingest(new Repository(store), 1, [{ start: BASE, data }], 1);
    const edited = Buffer.from(data);
    randomBytes(PS).copy(edited, 5 * PS);
    const child = await ingest(other, 1, [{ start: BASE, data: edited, sameAsParent: [[0, 5], [6, 58]] }], 2, 'acme', parent.snapshotId);
    expect(child.counts).toMatchObject({ parentPages: 63, newPages: 1 });
    expect((await readBack(await other.tenant('acme'), child))[0]!.equals(edited)).toBe(true);
  });

  it('still reads nodes stored one an object, and names a missing node pack', async () => {
    const store = new DirectoryObjectStore(dir);
    const m = await ingest(new Repository(store), 1, [{ start: BASE, data: randomBytes(8 * PS) }], 1);
    const t = await new Repository(store).tenant('acme');
    const root = m.vmas[0]!.map!;
    // As a repository written before node packs holds it: the node in an object of its own, no index entry.
    const legacy = nodesOf(3, BASE + 0x100_0000);
    await store.put(keys.mapNode('acme', legacy[0]!.sha), legacy[0]!.bytes);
    decodeMapNode(legacy[0]!.sha, await t.loadNode(legacy[0]!.sha), 0, { run: () => undefined, child: () => undefined });

    let packKey = '';
    for await (const o of store.list(keys.mapNodes('acme'))) if (!o.key.endsWith(legacy[0]!.sha)) packKey = o.key;
    await store.delete(packKey);
    const fresh = await new Repository(store).tenant('acme');
    await expect(readPageMap(root, PS, fresh.loadNode)).rejects.toMatchObject({ code: ErrorCodes.OBJECT_NOT_FOUND, details: { key: packKey, node: root.sha } });
  });
});
