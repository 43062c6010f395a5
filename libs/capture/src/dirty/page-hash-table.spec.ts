import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { mergeHashTables } from './merge-hash-tables';
import { HashCursor, PageHashTable, PageHashTableBuilder } from './page-hash-table';

const h = (s: string): Buffer => createHash('sha256').update(s).digest();

function build(addrs: number[], kind: 'sha256' | 'xxh3-128' = 'sha256'): PageHashTable {
  const b = new PageHashTableBuilder(1, 4096, kind);
  for (const a of addrs) b.add(a, h(String(a)));
  return b.build();
}

describe('PageHashTable', () => {
  it.each([['sha256', 32], ['xxh3-128', 16]] as const)('stores 8 + %s bytes per page (%i of hash) in two flat arrays, growing past its first capacity', (kind, w) => {
    const addrs = Array.from({ length: 5000 }, (_, i) => 0x7f0000000000 + i * 8192);
    const t = build(addrs, kind);
    expect(t.kind).toBe(kind);
    expect(t.hashBytes).toBe(w);
    expect(t.size).toBe(5000);
    expect(t.byteLength).toBe(5000 * (8 + w));
    expect(t.indexOf(addrs[4321])).toBe(4321);
    expect(t.indexOf(addrs[4321] + 4096)).toBe(-1);
    expect(t.hashAt(4321)).toEqual(h(String(addrs[4321])).subarray(0, w));
    expect(t.sameHash(17, h(String(addrs[17])))).toBe(true);
    expect(t.sameHash(17, h('other'))).toBe(false);
  });

  it('refuses pages added out of order', () => {
    const b = new PageHashTableBuilder(1, 4096);
    b.add(8192, h('a'));
    expect(() => b.add(4096, h('b'))).toThrow(RangeError);
  });

  it('finds ascending addresses with a forward-only cursor', () => {
    const t = build([4096, 12288, 20480]);
    const c = new HashCursor(t);
    expect([0, 4096, 8192, 12288, 16384, 20480, 24576].map((a) => c.find(a))).toEqual([
      -1, 0, -1, 1, -1, 2, -1,
    ]);
  });

  it('merges the pages read with the pages carried from the parent into one sorted table', () => {
    const m = mergeHashTables(build([4096, 16384]), build([8192, 12288, 20480]), true);
    expect([...m.addresses]).toEqual([4096, 8192, 12288, 16384, 20480]);
    expect(m.hashAt(2)).toEqual(h('12288'));
    expect(m.softDirtyCleared).toBe(true);
    expect(mergeHashTables(build([4096]), undefined, false).size).toBe(1);
    const x = mergeHashTables(build([4096], 'xxh3-128'), build([8192], 'xxh3-128'), false);
    expect([x.kind, x.hashes.length, x.hashAt(1)]).toEqual(['xxh3-128', 32, h('8192').subarray(0, 16)]);
    expect(() => mergeHashTables(build([4096], 'xxh3-128'), build([8192]), false)).toThrow(/cannot merge/);
  });

  it('rejects a hash buffer that does not match the addresses', () => {
    expect(() => new PageHashTable(1, 4096, new Float64Array(2), Buffer.alloc(32))).toThrow(/2 addresses/);
  });
});
