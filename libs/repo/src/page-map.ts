import { createHash } from 'node:crypto';
import { Compressor } from 'zstd-napi';
import { DCtx, getFrameContentSize } from 'zstd-napi/binding';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { forEachLimited } from '@pagevault/objstore';
import { PageKind, PageList } from './page-list';

/**
 * A VMA's page map as a Merkle tree over address ranges. Leaves cover LEAF_PAGES-aligned page ranges and
 * hold runs relative to their own start, so equal memory at any aligned place (an unchanged region in the
 * next snapshot, a shared library in another process, a zero region) is the same node, stored once.
 *
 *   node: "PVML" u8 version=1 u8 level u16 0 u32 count
 *   leaf (level 0): count × (u32 first page in leaf, u32 pages, u8 kind, 3 × u8 0), then the hashes of
 *                   the data runs' pages, in order
 *   inner (level>0): count × (u64 first page number of the child, 32-byte child node sha)
 *
 * A node is named by the SHA-256 of those bytes and stored as a zstd frame of them when that is smaller
 * (leaf hashes repeat wherever a page value does: a redis series' maps shrank 6×), else as they are;
 * readers tell the two apart by the magic.
 */
export const LEAF_PAGES = 1024;
export const FANOUT = 256;
const MAGIC = Buffer.from('PVML', 'latin1');

export interface MapNode {
  /** SHA-256 of the node's bytes. */
  sha: string;
  /** What is stored: the node's bytes, or a zstd frame of them when smaller. */
  bytes: Buffer;
}

/** The largest node: a leaf of LEAF_PAGES one-page runs, each a data page. */
const MAX_NODE_BYTES = 12 + LEAF_PAGES * (12 + 32);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const nodeCompressor = new Compressor();
nodeCompressor.setParameters({ compressionLevel: 1 });
const nodeDctx = new DCtx();

export interface MapRoot {
  sha: string;
  level: number;
  /** Page number (address / page size) where the root's range starts; leaves are position-free. */
  first: number;
}

/** Pages per leaf and children per inner node. */
export interface MapShape {
  leafPages: number;
  fanout: number;
}

/**
 * Builds the nodes of one VMA's page map; `emit` receives every node (callers skip ones already stored).
 * `shape` is for bench/experiments, which weigh other leaf sizes: stored maps always use the default
 * (readers bound a node's size by LEAF_PAGES).
 */
export function buildPageMap(
  list: PageList,
  order: Int32Array,
  emit: (n: MapNode) => void,
  { leafPages, fanout }: MapShape = { leafPages: LEAF_PAGES, fanout: FANOUT },
): MapRoot | undefined {
  const ps = list.pageSize;
  let level: { first: number; sha: Buffer }[] = [];
  let cur: { leaf: number; runs: number[]; hashes: Buffer[] } | undefined;
  const flushLeaf = () => {
    if (!cur) return;
    const runBytes = Buffer.alloc(cur.runs.length * 4); // 3 numbers, 12 bytes, per run
    for (let i = 0; i < cur.runs.length; i += 3) {
      runBytes.writeUInt32LE(cur.runs[i]!, i * 4);
      runBytes.writeUInt32LE(cur.runs[i + 1]!, i * 4 + 4);
      runBytes[i * 4 + 8] = cur.runs[i + 2]!;
    }
    const node = seal(0, cur.runs.length / 3, [runBytes, ...cur.hashes]);
    emit(node);
    level.push({ first: cur.leaf * leafPages, sha: Buffer.from(node.sha, 'hex') });
    cur = undefined;
  };
  for (const i of order) {
    let page = list.starts[i]! / ps;
    let left = list.counts[i]!;
    const kind = list.kinds[i]!;
    let h = list.hashAt[i]!;
    while (left > 0) {
      const leaf = Math.floor(page / leafPages);
      if (cur && cur.leaf !== leaf) flushLeaf();
      cur ??= { leaf, runs: [], hashes: [] };
      const take = Math.min(left, (leaf + 1) * leafPages - page);
      const r = cur.runs;
      const off = page - leaf * leafPages;
      // Adjacent runs of one kind merge, so a map's bytes depend only on the memory, not on how it arrived.
      if (r.length && r[r.length - 1] === kind && r[r.length - 3]! + r[r.length - 2]! === off) r[r.length - 2]! += take;
      else r.push(off, take, kind);
      if (kind === PageKind.Data) {
        cur.hashes.push(list.hashes.subarray(h, h + take * 32));
        h += take * 32;
      }
      page += take;
      left -= take;
    }
  }
  flushLeaf();
  if (level.length === 0) return undefined;
  let depth = 0;
  while (level.length > 1) {
    depth++;
    const up: typeof level = [];
    for (let i = 0; i < level.length; i += fanout) {
      const kids = level.slice(i, i + fanout);
      const body = Buffer.alloc(kids.length * 40);
      kids.forEach((k, j) => {
        body.writeUInt32LE(k.first % 0x1_0000_0000, j * 40);
        body.writeUInt32LE(Math.floor(k.first / 0x1_0000_0000), j * 40 + 4);
        k.sha.copy(body, j * 40 + 8);
      });
      const node = seal(depth, kids.length, [body]);
      emit(node);
      up.push({ first: kids[0]!.first, sha: Buffer.from(node.sha, 'hex') });
    }
    level = up;
  }
  return { sha: level[0]!.sha.toString('hex'), level: depth, first: level[0]!.first };
}

function seal(level: number, count: number, parts: Buffer[]): MapNode {
  const head = Buffer.alloc(12);
  MAGIC.copy(head);
  head[4] = 1;
  head[5] = level;
  head.writeUInt32LE(count, 8);
  const bytes = Buffer.concat([head, ...parts]);
  const z = nodeCompressor.compress(bytes);
  return { sha: createHash('sha256').update(bytes).digest('hex'), bytes: z.length < bytes.length ? z : bytes };
}

/** A stored node's bytes as its sha names them (inflated when stored as a zstd frame). */
export function mapNodeBytes(stored: Buffer): Buffer {
  return nodeBytes(stored, (why) => new PvError(ErrorCodes.OBJECT_CORRUPT, `page-map node: ${why}`));
}

/** A stored node's bytes as they were named: inflated when stored as a zstd frame, bounded by the largest node. */
function nodeBytes(stored: Buffer, bad: (why: string) => PvError): Buffer {
  if (stored.length < 4 || stored.compare(ZSTD_MAGIC, 0, 4, 0, 4) !== 0) return stored;
  let size: number | null;
  try {
    size = getFrameContentSize(stored);
  } catch {
    throw bad('not a zstd frame');
  }
  if (size === null || size > MAX_NODE_BYTES) throw bad(`compressed node claims ${size ?? 'an unknown'} size (at most ${MAX_NODE_BYTES})`);
  const out = Buffer.allocUnsafe(size);
  let n: number;
  try {
    n = nodeDctx.decompress(out, stored);
  } catch {
    throw bad('does not decompress');
  }
  if (n !== size) throw bad(`inflates to ${n} bytes, its frame says ${size}`);
  return out;
}

/** What one page-map node holds, handed over as it is decoded: no object per run or child. */
export interface MapNodeVisitor {
  /** A leaf's run: first page relative to the leaf, pages, kind; a data run's hashes are at b[hashAt, +32 × pages). */
  run(firstInLeaf: number, pages: number, kind: PageKind, b: Buffer, hashAt: number): void;
  /** An inner node's child: the first page number of its range and its sha. */
  child(first: number, sha: string): void;
}

/** Checks a node against its name and the level it was reached at, then hands its runs or children to `v`. */
export function decodeMapNode(sha: string, stored: Buffer, level: number, v: MapNodeVisitor): void {
  const bad = (why: string) => new PvError(ErrorCodes.OBJECT_CORRUPT, `page-map node ${sha}: ${why}`, { details: { node: sha } });
  const b = nodeBytes(stored, bad);
  if (createHash('sha256').update(b).digest('hex') !== sha) throw bad('content does not match its hash');
  if (b.length < 12 || b.compare(MAGIC, 0, 4, 0, 4) !== 0 || b[4] !== 1 || b[5] !== level) throw bad('bad header');
  const count = b.readUInt32LE(8);
  if (level === 0) {
    if (b.length < 12 + count * 12) throw bad('truncated');
    let h = 12 + count * 12;
    for (let i = 0; i < count; i++) {
      const o = 12 + i * 12;
      const pages = b.readUInt32LE(o + 4);
      const kind = b[o + 8] as PageKind;
      if (kind === PageKind.Data && h + pages * 32 > b.length) throw bad('truncated hashes');
      v.run(b.readUInt32LE(o), pages, kind, b, kind === PageKind.Data ? h : -1);
      if (kind === PageKind.Data) h += pages * 32;
    }
    return;
  }
  if (b.length !== 12 + count * 40) throw bad('bad length');
  for (let i = 0; i < count; i++) {
    const o = 12 + i * 40;
    v.child(b.readUInt32LE(o) + b.readUInt32LE(o + 4) * 0x1_0000_0000, b.subarray(o + 8, o + 40).toString('hex'));
  }
}

/**
 * Walks page maps breadth first from their roots, `width` node loads in flight, each node once however
 * many roots reach it (an unchanged region shared by many snapshots costs one walk), handing every leaf
 * run to `run`. A node that does not load or decode goes to `failed` with the root that reached it first
 * (which may rethrow, ending the walk). Returns every node reached. Memory: one string per node.
 */
export async function walkPageMaps<R extends { sha: string; level: number }>(
  roots: Iterable<R>,
  width: number,
  load: (sha: string) => Promise<Buffer>,
  run: MapNodeVisitor['run'],
  failed: (e: unknown, node: string, root: R) => void,
): Promise<Set<string>> {
  const seen = new Set<string>();
  let wave: { sha: string; level: number; root: R }[] = [];
  for (const root of roots) {
    if (seen.has(root.sha)) continue;
    seen.add(root.sha);
    wave.push({ sha: root.sha, level: root.level, root });
  }
  while (wave.length > 0) {
    const next: typeof wave = [];
    await forEachLimited(wave, width, async (n) => {
      try {
        decodeMapNode(n.sha, await load(n.sha), n.level, {
          run,
          child: (_first, sha) => {
            if (seen.has(sha)) return;
            seen.add(sha);
            next.push({ sha, level: n.level - 1, root: n.root });
          },
        });
      } catch (e) {
        failed(e, n.sha, n.root);
      }
    });
    wave = next;
  }
  return seen;
}

/** Reads a page map back into a PageList, verifying every node against its name. */
export async function readPageMap(root: MapRoot, pageSize: number, load: (sha: string) => Promise<Buffer>): Promise<PageList> {
  const list = new PageList(pageSize);
  const visit = async (sha: string, level: number, firstPage: number): Promise<void> => {
    const kids: { first: number; sha: string }[] = [];
    decodeMapNode(sha, await load(sha), level, {
      run: (first, pages, kind, b, h) => list.add((firstPage + first) * pageSize, pages, kind, b, h),
      child: (first, child) => kids.push({ first, sha: child }),
    });
    for (const k of kids) await visit(k.sha, level - 1, k.first);
  };
  await visit(root.sha, root.level, root.first);
  return list;
}
