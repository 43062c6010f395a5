import { createHash } from 'node:crypto';
import { ErrorCodes, PvError } from '@pagevault/errors';
import type { PageIndex, PageLocation } from './page-index';
import type { SealedPack } from './pack';

/**
 * An index file lists the pages of the packs written by one flush, so a compactor or restorer rebuilds
 * its PageIndex with one GET per flush instead of reading every pack's trailer.
 *   "PVIX" u32 version=1 u32 packs, packs × 32-byte sha, u32 entries,
 *   entries × (hash[32], u32 pack number, u32 blob offset, u32 blob length, u16 slot, u16 blob pages)
 */
const MAGIC = Buffer.from('PVIX', 'latin1');
const ENTRY = 48;

/** Bytes of an index file naming `packs` packs and `entries` pages. */
export function indexFileBytes(packs: number, entries: number): number {
  return 12 + packs * 32 + 4 + entries * ENTRY;
}

export function encodeIndexFile(packs: Pick<SealedPack, 'sha' | 'entries'>[]): { sha: string; bytes: Buffer } {
  const entries = packs.reduce((n, p) => n + p.entries.length, 0);
  const b = Buffer.alloc(indexFileBytes(packs.length, entries));
  MAGIC.copy(b);
  b.writeUInt32LE(1, 4);
  b.writeUInt32LE(packs.length, 8);
  let o = 12;
  for (const p of packs) o += Buffer.from(p.sha, 'hex').copy(b, o);
  b.writeUInt32LE(entries, o);
  o += 4;
  packs.forEach((p, pi) => {
    for (const e of p.entries) {
      e.hash.copy(b, o);
      b.writeUInt32LE(pi, o + 32);
      b.writeUInt32LE(e.blobOffset, o + 36);
      b.writeUInt32LE(e.blobLength, o + 40);
      b.writeUInt16LE(e.slot, o + 44);
      b.writeUInt16LE(e.blobPages, o + 46);
      o += ENTRY;
    }
  });
  return { sha: createHash('sha256').update(b).digest('hex'), bytes: b };
}

/**
 * Decodes an index file: hands every entry to `each` (its hash is b[hashAt, hashAt + 32)) and returns the
 * packs the file names, in its order.
 */
export function readIndexFile(b: Buffer, key: string, each: (b: Buffer, hashAt: number, loc: PageLocation) => void): string[] {
  const bad = (why: string) => new PvError(ErrorCodes.OBJECT_CORRUPT, `index ${key}: ${why}`, { details: { key } });
  if (b.length < 16 || b.compare(MAGIC, 0, 4, 0, 4) !== 0 || b.readUInt32LE(4) !== 1) throw bad('bad header');
  const packs = b.readUInt32LE(8);
  if (b.length < 12 + packs * 32 + 4) throw bad('truncated');
  const names: string[] = [];
  for (let i = 0; i < packs; i++) names.push(b.subarray(12 + i * 32, 44 + i * 32).toString('hex'));
  let o = 12 + packs * 32;
  const n = b.readUInt32LE(o);
  o += 4;
  if (b.length !== o + n * ENTRY) throw bad('length does not match its entry count');
  for (let i = 0; i < n; i++, o += ENTRY) {
    const pack = names[b.readUInt32LE(o + 32)];
    if (pack === undefined) throw bad('entry names a pack it does not list');
    each(b, o, {
      pack,
      blobOffset: b.readUInt32LE(o + 36),
      blobLength: b.readUInt32LE(o + 40),
      slot: b.readUInt16LE(o + 44),
      blobPages: b.readUInt16LE(o + 46),
    });
  }
  return names;
}

/** Adds an index file's entries to `into`; returns how many it holds. */
export function loadIndexFile(b: Buffer, key: string, into: PageIndex): number {
  let n = 0;
  readIndexFile(b, key, (h, at, loc) => {
    into.add(h, at, loc);
    n++;
  });
  return n;
}
