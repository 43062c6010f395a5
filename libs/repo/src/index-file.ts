import { createHash } from 'node:crypto';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { isHashNamed, namedByHash } from './keys';
import type { PageIndex, PageLocation } from './page-index';
import type { NodeEntry, SealedNodePack } from './node-pack';
import type { BlobBases, SealedPack } from './pack';

/**
 * An index file lists the pages of the packs written by one flush, so a compactor or restorer rebuilds
 * its PageIndex with one GET per flush instead of reading every pack's trailer.
 *   "PVIX" u32 version u32 packs, packs × 32-byte sha, u32 entries,
 *   entries × (hash[32], u32 pack number, u32 blob offset, u32 blob length, u16 slot, u8 blob pages,
 *              u8 delta depth)
 * Version 2 (written when a pack has delta blobs) goes on with the delta blobs' bases, which prune must
 * keep while a page of the blob is live:
 *   u32 blobs, blobs × (u32 pack number, u32 blob offset, u16 bases, u16 0, bases × hash[32])
 * Version 3 (written when it lists node packs, node-pack.ts) has that section, then the page-map nodes:
 *   u32 node packs, node packs × 32-byte sha, u32 nodes,
 *   nodes × (sha[32], u32 node pack number, u32 offset, u32 length)
 */
const MAGIC = Buffer.from('PVIX', 'latin1');
const ENTRY = 48;
const NODE_ENTRY = 44;

/** Bytes of an index file naming `packs` packs and `entries` pages. */
export function indexFileBytes(packs: number, entries: number): number {
  return 12 + packs * 32 + 4 + entries * ENTRY;
}

export function encodeIndexFile(
  packs: (Pick<SealedPack, 'sha' | 'entries'> & { bases?: BlobBases[] })[],
  nodePacks: Pick<SealedNodePack, 'sha' | 'entries'>[] = [],
): { sha: string; bytes: Buffer } {
  const entries = packs.reduce((n, p) => n + p.entries.length, 0);
  const blobs = packs.reduce((n, p) => n + (p.bases?.length ?? 0), 0);
  const nodes = nodePacks.reduce((n, p) => n + p.entries.length, 0);
  const version = nodePacks.length > 0 ? 3 : blobs > 0 ? 2 : 1;
  const baseBytes = version === 1 ? 0 : packs.reduce((n, p) => n + (p.bases ?? []).reduce((m, x) => m + 12 + x.hashes.length, 0), 4);
  const nodeBytes = version === 3 ? 8 + nodePacks.length * 32 + nodes * NODE_ENTRY : 0;
  const b = Buffer.alloc(indexFileBytes(packs.length, entries) + baseBytes + nodeBytes);
  MAGIC.copy(b);
  b.writeUInt32LE(version, 4);
  let o = writeSection(b, 8, packs, ENTRY, (e, pi, at) => {
    e.hash.copy(b, at);
    b.writeUInt32LE(pi, at + 32);
    b.writeUInt32LE(e.blobOffset, at + 36);
    b.writeUInt32LE(e.blobLength, at + 40);
    b.writeUInt16LE(e.slot, at + 44);
    b[at + 46] = e.blobPages;
    b[at + 47] = e.depth ?? 0;
  });
  if (version > 1) {
    b.writeUInt32LE(blobs, o);
    o += 4;
    packs.forEach((p, pi) => {
      for (const x of p.bases ?? []) {
        b.writeUInt32LE(pi, o);
        b.writeUInt32LE(x.blobOffset, o + 4);
        b.writeUInt16LE(x.hashes.length / 32, o + 8);
        o += 12 + x.hashes.copy(b, o + 12);
      }
    });
  }
  if (version === 3) {
    writeSection(b, o, nodePacks, NODE_ENTRY, (e, pi, at) => {
      e.sha.copy(b, at);
      b.writeUInt32LE(pi, at + 32);
      b.writeUInt32LE(e.offset, at + 36);
      b.writeUInt32LE(e.length, at + 40);
    });
  }
  return { sha: createHash('sha256').update(b).digest('hex'), bytes: b };
}

/**
 * Writes a section at b[o]: u32 count of `named`, their 32-byte shas, u32 count of their entries, then each
 * entry (`size` bytes, written by `put` with its owner's number). Returns the offset after it.
 */
function writeSection<E>(b: Buffer, o: number, named: { sha: string; entries: E[] }[], size: number, put: (e: E, owner: number, at: number) => void): number {
  b.writeUInt32LE(named.length, o);
  o += 4;
  for (const p of named) o += Buffer.from(p.sha, 'hex').copy(b, o);
  b.writeUInt32LE(named.reduce((n, p) => n + p.entries.length, 0), o);
  o += 4;
  named.forEach((p, pi) => {
    for (const e of p.entries) {
      put(e, pi, o);
      o += size;
    }
  });
  return o;
}

/** A delta blob's bases as an index file lists them: `n` hashes at b[at, at + 32 n). */
export type EachBases = (pack: string, blobOffset: number, b: Buffer, at: number, n: number) => void;

/** A page-map node as an index file lists it: its sha at b[at, at + 32), where it is in which node pack. */
export type EachNode = (nodePack: string, b: Buffer, at: number, node: Omit<NodeEntry, 'sha'>) => void;

/**
 * Decodes an index file: hands every entry to `each` (its hash is b[hashAt, hashAt + 32)), every delta
 * blob's bases to `eachBases`, every page-map node to `eachNode`, and returns the packs the file names,
 * in its order, then its node packs.
 */
export function readIndexFile(b: Buffer, key: string, each: (b: Buffer, hashAt: number, loc: PageLocation) => void, eachBases?: EachBases, eachNode?: EachNode): string[] {
  const bad = (why: string) => new PvError(ErrorCodes.OBJECT_CORRUPT, `index ${key}: ${why}`, { details: { key } });
  const version = b.length < 16 ? 0 : b.readUInt32LE(4);
  if (b.length < 16 || b.compare(MAGIC, 0, 4, 0, 4) !== 0 || version < 1 || version > 3) throw bad('bad header');
  const packs = b.readUInt32LE(8);
  if (b.length < 12 + packs * 32 + 4) throw bad('truncated');
  const names: string[] = [];
  for (let i = 0; i < packs; i++) names.push(b.subarray(12 + i * 32, 44 + i * 32).toString('hex'));
  let o = 12 + packs * 32;
  const n = b.readUInt32LE(o);
  o += 4;
  const end = o + n * ENTRY;
  if (version === 1 ? b.length !== end : b.length < end + 4) throw bad('length does not match its entry count');
  for (let i = 0; i < n; i++, o += ENTRY) {
    const pack = names[b.readUInt32LE(o + 32)];
    if (pack === undefined) throw bad('entry names a pack it does not list');
    each(b, o, {
      pack,
      blobOffset: b.readUInt32LE(o + 36),
      blobLength: b.readUInt32LE(o + 40),
      slot: b.readUInt16LE(o + 44),
      blobPages: b[o + 46]!,
      depth: b[o + 47]!,
    });
  }
  if (version > 1) {
    if (o + 4 > b.length) throw bad('truncated in its delta bases');
    const blobs = b.readUInt32LE(o);
    o += 4;
    for (let i = 0; i < blobs; i++) {
      if (o + 12 > b.length) throw bad('truncated in its delta bases');
      const pack = names[b.readUInt32LE(o)];
      const k = b.readUInt16LE(o + 8);
      if (pack === undefined) throw bad('delta bases name a pack it does not list');
      if (k === 0 || o + 12 + k * 32 > b.length) throw bad('truncated in its delta bases');
      eachBases?.(pack, b.readUInt32LE(o + 4), b, o + 12, k);
      o += 12 + k * 32;
    }
    if (version === 2 && o !== b.length) throw bad('length does not match its delta bases');
  }
  if (version === 3) {
    if (o + 4 > b.length) throw bad('truncated in its nodes');
    const np = b.readUInt32LE(o);
    o += 4;
    if (o + np * 32 + 4 > b.length) throw bad('truncated in its nodes');
    const nodePacks: string[] = [];
    for (let i = 0; i < np; i++, o += 32) nodePacks.push(b.toString('hex', o, o + 32));
    const nodes = b.readUInt32LE(o);
    o += 4;
    if (o + nodes * NODE_ENTRY !== b.length) throw bad('length does not match its node count');
    for (let i = 0; i < nodes; i++, o += NODE_ENTRY) {
      const pack = nodePacks[b.readUInt32LE(o + 32)];
      if (pack === undefined) throw bad('a node names a node pack it does not list');
      eachNode?.(pack, b, o, { offset: b.readUInt32LE(o + 36), length: b.readUInt32LE(o + 40) });
    }
    names.push(...nodePacks);
  }
  return names;
}

/**
 * Whether a key under index/ names an index file (64 hex digits, its SHA-256). Anything else there (a
 * stray README, an editor's backup) is not one: every reader ignores it, and nothing deletes it.
 */
export function isIndexFileKey(key: string): boolean {
  return isHashNamed(key);
}

/** The index file's bytes, if they hash to its name (an index file is named by its SHA-256); else PV_OBJECT_CORRUPT. */
export function checkIndexFile(b: Buffer, key: string): Buffer {
  if (!namedByHash(b, key)) {
    throw new PvError(ErrorCodes.OBJECT_CORRUPT, `index ${key}: its ${b.length} bytes do not hash to its name (damaged or truncated)`, { details: { key } });
  }
  return b;
}

/** Adds an index file's pages to `into` and its nodes to `nodes`; returns how many pages it holds. */
export function loadIndexFile(b: Buffer, key: string, into: PageIndex, nodes?: PageIndex): number {
  let n = 0;
  readIndexFile(b, key, (h, at, loc) => {
    into.add(h, at, loc);
    n++;
  }, undefined, nodes && ((pack, nb, at, e) => void nodes.add(nb, at, { pack, blobOffset: e.offset, blobLength: e.length, slot: 0, blobPages: 0 })));
  return n;
}

/** What to say after "in no index file": the damaged index files, if any, and the way back. */
export function missingIndexHint(damaged: PvError[]): string {
  const which = damaged.length ? `; ${damaged.length} index file(s) are damaged (${damaged.map((e) => String(e.details['key'])).join(', ')})` : '';
  return `${which} — if an index file was damaged or deleted, \`pagevault repair-index\` rebuilds it from the packs`;
}
