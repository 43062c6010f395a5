import { ErrorCodes, PvError, isPvError } from '@pagevault/errors';
import { forEachLimited, type ObjectInfo, type ObjectStore } from '@pagevault/objstore';
import { checkIndexFile, isIndexFileKey, readIndexFile } from './index-file';
import { keys } from './keys';
import { NodeStore } from './node-pack';
import { parseManifest } from './manifest';
import { PageIndex, type PageLocation } from './page-index';
import { PageKind } from './page-list';
import { walkPageMaps } from './page-map';

/** What the tenant's manifests reach. */
export interface LiveSet {
  /** Ids of the snapshots whose manifests were read. */
  snapshots: Set<string>;
  /** Page-map nodes, by sha. */
  nodes: Set<string>;
  /** Data pages: a set of 32-byte hashes (the location is unused). */
  pages: PageIndex;
}

/** The location of a page in a set of hashes (unused). */
export const NOWHERE: PageLocation = { pack: '', blobOffset: 0, blobLength: 0, slot: 0, blobPages: 0 };

/** Everything under a prefix (keys, sizes, modification times): one string per object, never per page. */
export async function listAll(store: ObjectStore, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list(prefix)) out.push(o);
  return out;
}

/**
 * A store error during the mark, rethrown with its code and why prune stops: an object that cannot be
 * read may reach anything, so nothing may be deleted.
 */
export function refusal(e: unknown, what: string, details: Record<string, unknown>): unknown {
  if (!isPvError(e) || e.retriable) return e;
  const repair = /^index file /.test(what) || /in no index file/.test(e.message) ? ' (`pagevault repair-index` rebuilds damaged or missing index files from the packs)' : '';
  return new PvError(e.code, `${what}: ${e.message}; prune deletes nothing while it cannot tell what is live${repair}`, {
    cause: e,
    details: { ...e.details, ...details },
  });
}

/** The tenant's node index, from every index file (`width` GETs in flight); an unreadable file stops prune. */
export async function loadNodes(store: ObjectStore, tenant: string, width: number): Promise<NodeStore> {
  const nodes = new NodeStore(store, tenant);
  await forEachLimited((await listAll(store, keys.indexes(tenant))).filter((o) => isIndexFileKey(o.key)), width, async (info) => {
    try {
      readIndexFile(checkIndexFile(await store.get(info.key), info.key), info.key, () => undefined, undefined, (pack, b, at, e) => nodes.addNode(pack, b, at, e));
    } catch (e) {
      throw refusal(e, `index file ${info.key}`, { key: info.key });
    }
  });
  return nodes;
}

/**
 * Mark: reads every manifest, then walks every VMA's page map breadth first, `width` node reads in
 * flight (`loadNode`: from the node packs, a pack read once), each node once however many snapshots
 * share it (so an unchanged region costs one walk, not one per snapshot). A manifest or node that is
 * missing or does not decode stops prune with a PvError naming it. Memory: one string per map node (a
 * leaf covers 4 MiB of memory) and one PageIndex record (~59 bytes) per distinct live page.
 */
export async function markLive(store: ObjectStore, tenant: string, width: number, loadNode: (sha: string) => Promise<Buffer>): Promise<LiveSet> {
  const snapshots = new Set<string>();
  const roots: { sha: string; level: number; snapshot: string }[] = [];
  await forEachLimited(await listAll(store, keys.manifests(tenant)), width, async ({ key }) => {
    let bytes: Buffer;
    try {
      bytes = await store.get(key);
    } catch (e) {
      if (isPvError(e, ErrorCodes.OBJECT_NOT_FOUND)) return; // forgotten since the listing: reaches nothing
      throw e;
    }
    let m;
    try {
      m = parseManifest(bytes, key);
    } catch (e) {
      throw refusal(e, `prune of tenant ${tenant}`, { key });
    }
    snapshots.add(m.snapshotId);
    for (const v of m.vmas) if (v.map) roots.push({ sha: v.map.sha, level: v.map.level, snapshot: m.snapshotId });
  });
  const pages = new PageIndex();
  const nodes = await walkPageMaps(
    roots,
    width,
    loadNode,
    (_first, n, kind, b, h) => {
      if (kind === PageKind.Data) for (let i = 0; i < n; i++) pages.add(b, h + i * 32, NOWHERE);
    },
    (e, node, root) => {
      throw refusal(e, `page-map node ${node}, reached by snapshot ${root.snapshot}`, { node, snapshot: root.snapshot });
    },
  );
  return { snapshots, nodes, pages };
}
