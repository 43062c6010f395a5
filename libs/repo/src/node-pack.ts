import { createHash } from 'node:crypto';
import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import type { ObjectStore } from '@pagevault/objstore';
import { basename, keys, namedByHash } from './keys';
import { missingIndexHint } from './index-file';
import { PageIndex } from './page-index';
import { mapNodeBytes, type MapNode } from './page-map';

/**
 * Page-map nodes are stored many to an object, as restic stores tree blobs in packs: the nodes a
 * snapshot adds go out together in node packs, named by the SHA-256 of their bytes, under maps/, and the
 * index files say where each node is. (One object a node cost a Node.js process of a thousand VMAs a
 * thousand PUTs a snapshot, at ~3 ms of S3 client CPU each; repositories written then still read.)
 *
 *   node pack: node | node | ... | trailer | u32 trailer length | "PVMP"
 *   trailer:   u32 version=1, u32 nodes, nodes × (sha[32], u32 offset, u32 length)
 *
 * A node is as page-map.ts stores it (its bytes, or a zstd frame of them); its sha names the bytes.
 */
export const NODE_PACK_MAGIC = Buffer.from('PVMP', 'latin1');

/**
 * Whether an object under maps/ is intact: a node pack whose bytes hash to its name, or a node stored as
 * an object of its own (before node packs) whose node bytes, inflated, do. Anything else — a node pack
 * cut short, which has lost its trailing magic too — is damaged.
 */
export function nodeObjectIntact(b: Buffer, key: string): boolean {
  if (namedByHash(b, key)) return true;
  try {
    return createHash('sha256').update(mapNodeBytes(b)).digest('hex') === basename(key);
  } catch {
    return false;
  }
}
/** A snapshot's new nodes go out in a pack once they reach this many bytes, the rest at its end. */
export const NODE_PACK_BYTES = 4 << 20;
const ENTRY = 40;

export interface NodeEntry {
  sha: Buffer;
  offset: number;
  length: number;
}

export interface SealedNodePack {
  sha: string;
  bytes: Buffer;
  entries: NodeEntry[];
}

/** One pack of nodes (distinct shas: the caller drops repeats). */
export function encodeNodePack(nodes: MapNode[]): SealedNodePack {
  const body = nodes.reduce((n, x) => n + x.bytes.length, 0);
  const b = Buffer.allocUnsafe(body + 8 + nodes.length * ENTRY + 8);
  const entries: NodeEntry[] = [];
  let o = 0;
  for (const n of nodes) {
    entries.push({ sha: Buffer.from(n.sha, 'hex'), offset: o, length: n.bytes.length });
    o += n.bytes.copy(b, o);
  }
  const t0 = o;
  b.writeUInt32LE(1, o);
  b.writeUInt32LE(nodes.length, o + 4);
  o += 8;
  for (const e of entries) {
    e.sha.copy(b, o);
    b.writeUInt32LE(e.offset, o + 32);
    b.writeUInt32LE(e.length, o + 36);
    o += ENTRY;
  }
  b.writeUInt32LE(o - t0, o);
  NODE_PACK_MAGIC.copy(b, o + 4);
  return { sha: createHash('sha256').update(b).digest('hex'), bytes: b, entries };
}

/** A node pack's trailer (to rebuild or check an index); a pack whose trailer does not fit is corrupt. */
export function readNodePackTrailer(b: Buffer, key: string): NodeEntry[] {
  const bad = (why: string) => new PvError(ErrorCodes.OBJECT_CORRUPT, `node pack ${key}: ${why}`, { details: { key } });
  if (b.length < 16 || b.compare(NODE_PACK_MAGIC, 0, 4, b.length - 4) !== 0) throw bad('no node-pack trailer');
  const tlen = b.readUInt32LE(b.length - 8);
  const t0 = b.length - 8 - tlen;
  if (t0 < 0 || tlen < 8 || b.readUInt32LE(t0) !== 1) throw bad('bad trailer');
  const n = b.readUInt32LE(t0 + 4);
  if (8 + n * ENTRY !== tlen) throw bad('trailer entry count does not match its length');
  const out: NodeEntry[] = [];
  for (let i = 0, o = t0 + 8; i < n; i++, o += ENTRY) {
    const e = { sha: Buffer.from(b.subarray(o, o + 32)), offset: b.readUInt32LE(o + 32), length: b.readUInt32LE(o + 36) };
    if (e.offset + e.length > t0) throw bad(`node at ${e.offset} runs into the trailer`);
    out.push(e);
  }
  return out;
}

/**
 * Where a tenant's page-map nodes are (node sha → node pack, offset, length, from the index files) and
 * reading them: a node pack is read whole once and kept (most recently used, `cacheBytes`), since a map
 * walk asks for many nodes of each. A node in no index file is read from an object of its own (written
 * before node packs) after `refresh` (the owner reloading index files written since it loaded them).
 */
export class NodeStore {
  readonly index = new PageIndex();
  private readonly packs = new Map<string, { bytes: Promise<Buffer>; size: number }>();
  private held = 0;

  constructor(
    private readonly store: ObjectStore,
    private readonly tenant: string,
    private readonly refresh: () => Promise<void> = () => Promise.resolve(),
    private readonly cacheBytes = 64 << 20,
  ) {}

  /** Whether the node is in a node pack some index file lists. */
  has(sha: string): boolean {
    return this.index.has(Buffer.from(sha, 'hex'));
  }

  /** A pack's nodes as they are durable (its index file written). */
  addPack(p: Pick<SealedNodePack, 'sha' | 'entries'>): void {
    for (const e of p.entries) this.addNode(p.sha, e.sha, 0, e);
  }

  /** One node as an index file lists it: its sha at sha[at, at + 32). */
  addNode(pack: string, sha: Uint8Array, at: number, e: Omit<NodeEntry, 'sha'>): void {
    this.index.add(sha, at, { pack, blobOffset: e.offset, blobLength: e.length, slot: 0, blobPages: 0 });
  }

  /** The node's stored bytes (checked against its sha by whoever decodes it). */
  load = async (sha: string): Promise<Buffer> => {
    const h = Buffer.from(sha, 'hex');
    let r = this.index.locate(h);
    if (r < 0) {
      await this.refresh();
      r = this.index.locate(h);
    }
    if (r < 0) {
      // Before node packs, a node was an object of its own; a node in no index file and not such an
      // object is what a damaged or deleted index file looks like.
      return this.store.get(keys.mapNode(this.tenant, sha)).catch((e: unknown) => {
        if (!isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) throw e;
        throw new PvError(ErrorCodes.OBJECT_NOT_FOUND, `page-map node ${sha} is in no index file (nor an object of its own)${missingIndexHint([])}`, { cause: e, details: { node: sha } });
      });
    }
    const packSha = this.index.packOf(r);
    const key = keys.mapNode(this.tenant, packSha);
    let pack: Buffer;
    try {
      pack = await this.pack(packSha);
    } catch (e) {
      if (!isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) throw e;
      throw new PvError(ErrorCodes.OBJECT_NOT_FOUND, `page-map node ${sha}: its node pack ${key} is missing`, { cause: e, details: { key, node: sha } });
    }
    const off = this.index.blobOffsetOf(r);
    const end = off + this.index.blobLengthOf(r);
    if (end > pack.length - 8) throw new PvError(ErrorCodes.OBJECT_CORRUPT, `page-map node ${sha}: ${key} is ${pack.length} bytes, the node's place ends at ${end}`, { details: { key, node: sha } });
    return pack.subarray(off, end);
  };

  private pack(sha: string): Promise<Buffer> {
    const hit = this.packs.get(sha);
    if (hit) {
      this.packs.delete(sha);
      this.packs.set(sha, hit);
      return hit.bytes;
    }
    const e = { bytes: this.store.get(keys.mapNode(this.tenant, sha)), size: 0 };
    this.packs.set(sha, e);
    e.bytes.then(
      (b) => {
        if (this.packs.get(sha) !== e) return;
        e.size = b.length;
        this.held += b.length;
        for (const [k, x] of this.packs) {
          if (this.held <= this.cacheBytes || k === sha) break;
          this.packs.delete(k);
          this.held -= x.size;
        }
      },
      () => this.packs.get(sha) === e && this.packs.delete(sha),
    );
    return e.bytes;
  }
}
