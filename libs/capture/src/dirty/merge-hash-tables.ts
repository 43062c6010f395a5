import { PageHashTable } from './page-hash-table';

/**
 * Merges two tables of disjoint addresses (pages read, pages carried over from the parent) into one
 * sorted table. Linear: both are sorted already.
 */
export function mergeHashTables(
  a: PageHashTable,
  b: PageHashTable | undefined,
  softDirtyCleared: boolean,
): PageHashTable {
  if (!b || b.size === 0)
    return new PageHashTable(a.pid, a.pageSize, a.addresses, a.hashes, softDirtyCleared, a.kind);
  if (b.kind !== a.kind) throw new RangeError(`cannot merge ${a.kind} page hashes with ${b.kind} ones`);
  const w = a.hashBytes;
  const n = a.size + b.size;
  const addrs = new Float64Array(n);
  const hashes = Buffer.allocUnsafe(n * w);
  let i = 0;
  let j = 0;
  for (let k = 0; k < n; k++) {
    const takeA = j >= b.size || (i < a.size && a.addresses[i] < b.addresses[j]);
    const t = takeA ? a : b;
    const idx = takeA ? i++ : j++;
    addrs[k] = t.addresses[idx];
    t.hashes.copy(hashes, k * w, idx * w, (idx + 1) * w);
  }
  return new PageHashTable(a.pid, a.pageSize, addrs, hashes, softDirtyCleared, a.kind);
}
