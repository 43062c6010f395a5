import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The golden vectors read with nothing but docs/format.md: a DataView, the byte tables and a CRC32C
 * written out here. No code of the library is used, so a change to the bytes that the library and its
 * own tests agree on still fails here until the document changes with it.
 */
const DIR = join(__dirname, '..', '..', 'test-vectors');
const NAMES = ['full-snapshot', 'incremental-snapshot', 'aborted-stream', 'small-frames'];

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  return c >>> 0;
});
/** CRC-32C (Castagnoli), reflected, initial value and final XOR 0xFFFFFFFF. */
function crc32c(parts: Uint8Array[]): number {
  let c = 0xffffffff;
  for (const p of parts) for (const byte of p) c = CRC_TABLE[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

class Reader {
  constructor(private readonly v: DataView, public at: number) {}
  u8 = () => this.v.getUint8(this.at++);
  u16 = () => ((this.at += 2), this.v.getUint16(this.at - 2, true));
  u32 = () => ((this.at += 4), this.v.getUint32(this.at - 4, true));
  u64 = () => ((this.at += 8), this.v.getBigUint64(this.at - 8, true));
  hex = (n: number) => ((this.at += n), Buffer.from(this.v.buffer, this.v.byteOffset + this.at - n, n).toString('hex'));
  str = () => {
    const n = this.u16();
    this.at += n;
    return Buffer.from(this.v.buffer, this.v.byteOffset + this.at - n, n).toString('utf8');
  };
}

const big = (s: string) => BigInt(s);
const TYPE_NAMES = ['', 'SnapshotBegin', 'VmaBegin', 'PageChunk', 'ZeroRuns', 'FileRuns', 'ParentRuns', 'VmaEnd', 'SnapshotEnd', 'Abort'];

describe.each(NAMES)('vector %s against the byte tables of docs/format.md', (name) => {
  const bin = readFileSync(join(DIR, `${name}.bin`));
  const want = JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8'));
  const view = new DataView(bin.buffer, bin.byteOffset, bin.byteLength);

  it('has the documented 36-byte header, a CRC32C over header[0,32) then the payload, and the digest', () => {
    expect(crc32c([Buffer.from('123456789')])).toBe(0xe3069283); // the CRC-32C check value
    let off = 0;
    let seq = 0;
    const digest = createHash('sha256');
    while (off < bin.length) {
      const r = new Reader(view, off);
      expect(r.hex(4)).toBe(Buffer.from('PVFR').toString('hex'));
      expect(r.u8()).toBe(1); // version
      const type = r.u8();
      expect(r.u16()).toBe(0); // flags
      const length = r.u32();
      expect(r.u32()).toBe(seq);
      expect(r.hex(16)).toBe(want.snapshotId);
      const crc = r.u32();
      expect(crc).toBe(crc32c([bin.subarray(off, off + 32), bin.subarray(off + 36, off + 36 + length)]));
      expect(want.frames[seq]).toEqual({ sequence: seq, offset: off, type: TYPE_NAMES[type], length, crc32c: crc.toString(16).padStart(8, '0') });
      if (type === 8) {
        expect(length).toBe(80);
        expect(bin.subarray(off + 36 + 48, off + 36 + 80).toString('hex')).toBe(digest.digest('hex'));
      } else {
        digest.update(bin.subarray(off, off + 36));
      }
      off += 36 + length;
      seq++;
    }
    expect(off).toBe(bin.length);
    expect(seq).toBe(want.frames.length);
  });

  it('has payloads laid out as the tables say', () => {
    const ps = want.begin.pageSize;
    let vma = -1;
    const seen = { pages: [] as string[][], zero: [] as unknown[][], file: [] as unknown[][], parent: [] as unknown[][] };
    for (const f of want.frames) {
      const r = new Reader(view, f.offset + 36);
      const end = f.offset + 36 + f.length;
      switch (f.type) {
        case 'SnapshotBegin': {
          const b = want.begin;
          expect([r.u32(), r.u32(), r.u64()]).toEqual([ps, b.pid, BigInt(b.startTimeMs)]);
          expect(r.hex(16)).toBe(b.parentId ?? '00'.repeat(16));
          expect(r.hex(16)).toBe(b.groupId ?? '00'.repeat(16));
          expect([r.u8(), r.u8(), r.u16()]).toEqual([b.mode, b.consistency, 0]);
          expect(r.at - f.offset - 36).toBe(52);
          expect([r.str(), r.str(), r.str()]).toEqual([b.tenant, b.host, b.cmdline]);
          break;
        }
        case 'VmaBegin': {
          const v = want.vmas[++vma];
          for (const k of Object.values(seen)) k.push([]);
          expect(r.u32()).toBe(v.index);
          expect([r.u64(), r.u64()]).toEqual([big(v.start), big(v.end)]);
          expect([r.u32(), r.u32(), r.u64()]).toEqual([v.prot, v.flags, big(v.pgoff)]);
          expect([r.u8(), r.u8(), r.u16(), r.u64()]).toEqual([v.kind, 0, 0, BigInt(v.inode)]);
          expect(r.at - f.offset - 36).toBe(48);
          expect([r.str(), r.str(), r.str(), r.str(), r.str()]).toEqual([v.dev, v.path, v.vmFlags, v.reason, v.sharedKey]);
          break;
        }
        case 'PageChunk': {
          const n = r.u32();
          expect(r.u32()).toBe(ps);
          expect(f.length).toBe(8 + n * (8 + ps));
          const dataAt = r.at + n * 8;
          for (let i = 0; i < n; i++) {
            const a = '0x' + r.u64().toString(16);
            const page = bin.subarray(dataAt + i * ps, dataAt + (i + 1) * ps);
            seen.pages[vma]!.push(a + ' ' + createHash('sha256').update(page).digest('hex'));
          }
          r.at = dataAt + n * ps;
          break;
        }
        case 'ZeroRuns':
        case 'FileRuns':
        case 'ParentRuns': {
          const n = r.u32();
          expect(f.length).toBe(4 + 16 * n);
          const list = seen[f.type === 'ZeroRuns' ? 'zero' : f.type === 'FileRuns' ? 'file' : 'parent'][vma]!;
          for (let i = 0; i < n; i++) list.push({ start: '0x' + r.u64().toString(16), pages: Number(r.u64()) });
          break;
        }
        case 'VmaEnd':
          expect([r.u32(), r.u32()]).toEqual([vma, 0]);
          break;
        case 'SnapshotEnd': {
          const e = want.end;
          expect([r.u32(), r.u32()]).toEqual([e.vmaCount, 0]);
          const counts = [r.u64(), r.u64(), r.u64(), r.u64(), r.u64()];
          expect(counts).toEqual([e.dataPages, e.zeroPages, e.filePages, e.parentPages, e.frameCount].map(BigInt));
          expect(r.hex(32)).toBe(e.digest);
          break;
        }
        case 'Abort':
          expect([r.str(), r.str()]).toEqual([want.abort.code, want.abort.message]);
          break;
        default:
          throw new Error(`unknown type ${f.type}`);
      }
      expect(r.at).toBe(end);
    }
    want.vmas.forEach((v: { pages: { address: string; sha256: string }[]; zeroRuns: unknown[]; fileRuns: unknown[]; parentRuns: unknown[] }, i: number) => {
      expect(seen.pages[i]).toEqual(v.pages.map((p) => p.address + ' ' + p.sha256));
      expect([seen.zero[i], seen.file[i], seen.parent[i]]).toEqual([v.zeroRuns, v.fileRuns, v.parentRuns]);
    });
  });
});
