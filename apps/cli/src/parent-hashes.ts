import { PageHashTable } from '@pagevault/capture';
import { PageKind, readPageMap, type Manifest, type TenantStore } from '@pagevault/repo';

/**
 * The parent's page hashes, rebuilt from its page map in the store, for a hash-compare incremental
 * (this kernel has no soft-dirty bits). 40 bytes a data page.
 */
export async function parentHashTable(t: TenantStore, m: Manifest): Promise<PageHashTable> {
  const addrs: number[] = [];
  const parts: Buffer[] = [];
  for (const v of m.vmas) {
    if (!v.map) continue;
    const list = await readPageMap(v.map, m.pageSize, t.loadNode);
    for (const i of list.order(`snapshot ${m.snapshotId}`)) {
      if (list.kinds[i] !== PageKind.Data) continue;
      for (let k = 0; k < list.counts[i]!; k++) addrs.push(list.starts[i]! + k * m.pageSize);
      parts.push(list.hashes.subarray(list.hashAt[i]!, list.hashAt[i]! + list.counts[i]! * 32));
    }
  }
  return new PageHashTable(m.pid, m.pageSize, Float64Array.from(addrs), Buffer.concat(parts));
}
