import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { PageKind, PageList } from './page-list';
import { LEAF_PAGES, buildPageMap, readPageMap, type MapNode } from './page-map';

const PS = 4096;
const hashes = (n: number, seed: number) => Buffer.concat(Array.from({ length: n }, (_, i) => createHash('sha256').update(`${seed}:${i}`).digest()));

function build(list: PageList) {
  const nodes = new Map<string, Buffer>();
  const root = buildPageMap(list, list.order('t'), (n: MapNode) => nodes.set(n.sha, n.bytes));
  return { root: root!, nodes };
}

describe('page map', () => {
  it('round-trips runs of every kind across many leaves', async () => {
    const list = new PageList(PS);
    const base = 0x7f00_0000_0000;
    list.add(base, 3000, PageKind.Data, hashes(3000, 1));
    list.add(base + 3000 * PS, 500, PageKind.Zero);
    list.add(base + 4000 * PS, 10, PageKind.File);
    const { root, nodes } = build(list);
    expect(root.level).toBe(1);
    const back = await readPageMap(root, PS, async (sha) => nodes.get(sha)!);
    const o = back.order('t');
    expect(back.pages).toBe(3510);
    expect(back.lookup(base + 2999 * PS, o)).toEqual({ kind: PageKind.Data, hashOffset: expect.any(Number) });
    const hit = back.lookup(base + 1234 * PS, o)!;
    expect(back.hashes.subarray(hit.hashOffset, hit.hashOffset + 32)).toEqual(hashes(3000, 1).subarray(1234 * 32, 1235 * 32));
    expect(back.lookup(base + 3700 * PS, o)).toBeUndefined();
  });

  it('gives equal memory at any aligned place the same leaf, however its runs arrived', () => {
    const a = new PageList(PS);
    a.add(0x10_0000_0000, LEAF_PAGES, PageKind.Data, hashes(LEAF_PAGES, 2));
    const b = new PageList(PS);
    const hs = hashes(LEAF_PAGES, 2);
    for (let i = LEAF_PAGES - 1; i >= 0; i--) b.add(0x20_0000_0000 + i * PS, 1, PageKind.Data, hs, i * 32);
    expect(build(a).root.sha).toBe(build(b).root.sha);
  });

  it('changes only the leaf that holds a changed page, plus the path above it', () => {
    const mk = (flip: boolean) => {
      const l = new PageList(PS);
      const hs = hashes(8 * LEAF_PAGES, 3);
      if (flip) hs[5 * LEAF_PAGES * 32 + 7] ^= 1;
      l.add(0x40_0000_0000, 8 * LEAF_PAGES, PageKind.Data, hs);
      return build(l).nodes;
    };
    const before = mk(false);
    const after = mk(true);
    const fresh = [...after.keys()].filter((k) => !before.has(k));
    expect(fresh.length).toBe(2); // one leaf and the root
  });

  it('rejects a node whose bytes do not match its name', async () => {
    const list = new PageList(PS);
    list.add(0, 2, PageKind.Zero);
    const { root, nodes } = build(list);
    const bytes = Buffer.from(nodes.get(root.sha)!);
    bytes[bytes.length - 1] ^= 1;
    await expect(readPageMap(root, PS, async () => bytes)).rejects.toMatchObject({ code: 'PV_OBJECT_CORRUPT' });
  });

  it('stores a leaf whose hashes repeat as a zstd frame named by its plain bytes, a leaf of distinct hashes as is', async () => {
    const repeated = Buffer.concat(Array.from({ length: LEAF_PAGES }, (_, i) => hashes(8, 4).subarray((i % 8) * 32, (i % 8) * 32 + 32)));
    const a = new PageList(PS);
    a.add(0x10_0000_0000, LEAF_PAGES, PageKind.Data, repeated);
    const r = build(a);
    const stored = r.nodes.get(r.root.sha)!;
    expect(stored.subarray(0, 4)).toEqual(Buffer.from([0x28, 0xb5, 0x2f, 0xfd]));
    expect(stored.length).toBeLessThan(LEAF_PAGES * 32 / 4);
    const back = await readPageMap(r.root, PS, async (sha) => r.nodes.get(sha)!);
    expect(back.hashes.subarray(0, LEAF_PAGES * 32)).toEqual(repeated);
    const b = new PageList(PS);
    b.add(0x10_0000_0000, LEAF_PAGES, PageKind.Data, hashes(LEAF_PAGES, 5));
    const plain = build(b);
    expect(plain.nodes.get(plain.root.sha)!.subarray(0, 4).toString('latin1')).toBe('PVML');
    expect(createHash('sha256').update(plain.nodes.get(plain.root.sha)!).digest('hex')).toBe(plain.root.sha);
  });

  it('rejects a compressed node that claims more than the largest node, without inflating it', async () => {
    const { compress } = await import('zstd-napi');
    const huge = compress(Buffer.alloc(64 << 20));
    const root = { sha: createHash('sha256').update(Buffer.alloc(64 << 20)).digest('hex'), level: 0, first: 0 };
    await expect(readPageMap(root, PS, async () => huge)).rejects.toMatchObject({ code: 'PV_OBJECT_CORRUPT', message: expect.stringMatching(/claims/) });
  });
});
