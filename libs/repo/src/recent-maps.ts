import type { PageList } from './page-list';
import type { MapRoot } from './page-map';

/** A VMA's page map as ingest uses it: its runs and their address order. */
export interface LoadedMap {
  list: PageList;
  order: Int32Array;
}

/**
 * The page maps of the VMAs a compactor ingested last, by their root: the next snapshot of the same
 * process resolves "same as parent" and finds its delta bases in them without reading the parent's map
 * back node by node (a Node.js process has a thousand VMAs, a GET each). A root's sha names its map's
 * bytes and its first page places them (leaves are position-free), so a map found here is the one the
 * store holds, for any tenant whose manifest names that root.
 * Least recently used first out, bounded by the bytes the lists hold; one entry per VMA, none per page.
 */
export class RecentMaps {
  private readonly maps = new Map<string, { map: LoadedMap; bytes: number }>();
  private held = 0;

  constructor(private readonly limit: number) {}

  get bytes(): number {
    return this.held;
  }

  get size(): number {
    return this.maps.size;
  }

  /** Keeps a map its owner no longer changes; one larger than the whole limit is not kept. */
  put(root: MapRoot, map: LoadedMap): void {
    const bytes = footprint(map);
    const k = key(root);
    if (bytes > this.limit || this.maps.has(k)) return;
    this.maps.set(k, { map, bytes });
    this.held += bytes;
    for (const [old, e] of this.maps) {
      if (this.held <= this.limit) break;
      this.maps.delete(old);
      this.held -= e.bytes;
    }
  }

  /** The map with this root, now the most recently used; undefined if not held. */
  get(root: MapRoot): LoadedMap | undefined {
    const k = key(root);
    const e = this.maps.get(k);
    if (!e) return undefined;
    this.maps.delete(k);
    this.maps.set(k, e);
    return e.map;
  }
}

const key = (r: MapRoot): string => `${r.sha}@${r.first}`;

/** What a map keeps alive: its hash buffer and run arrays as allocated, and the order. */
function footprint({ list, order }: LoadedMap): number {
  return list.hashes.length + list.starts.byteLength + list.counts.byteLength + list.kinds.byteLength + list.hashAt.byteLength + order.byteLength;
}
