import { createHash } from 'node:crypto';
import { ErrorCodes, PvError } from '@pagevault/errors';

/**
 * The bucket layout. Everything under a tenant's prefix is written once and never modified; packs,
 * index files and page-map nodes are named by the SHA-256 of their bytes; manifests by snapshot id.
 *
 *   t/<tenant>/packs/<hh>/<sha256>       zstd page packs (several MiB)
 *   t/<tenant>/index/<sha256>            page hash -> pack location, for the packs of one flush
 *   t/<tenant>/maps/<hh>/<sha256>        page-map tree nodes
 *   t/<tenant>/snapshots/<id>.json       manifests: a snapshot exists iff its manifest does
 *   t/<tenant>/failed/<id>.json          why a snapshot was rejected
 *   t/<tenant>/tags/<tag>/<id>           empty marker: snapshot <id> carries <tag> (added after commit)
 *   t/<tenant>/locks/<kind>-<id>         a lock (shared or exclusive), rewritten while held; the one mutable key
 *   t/<tenant>/locks/pruned-<id>         empty marker of the last prune that deleted anything (its generation)
 */
const TENANT = /^[a-z0-9][a-z0-9._-]{0,63}$/;

const TAG = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function checkTag(tag: string): string {
  if (!TAG.test(tag)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `tag ${JSON.stringify(tag)} must match ${TAG.source}`);
  return tag;
}

export function checkTenant(tenant: string): string {
  if (!TENANT.test(tenant)) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `tenant ${JSON.stringify(tenant)} must match ${TENANT.source}`);
  }
  return tenant;
}

export const keys = {
  tenants: 't/',
  pack: (t: string, sha: string) => `t/${t}/packs/${sha.slice(0, 2)}/${sha}`,
  packs: (t: string) => `t/${t}/packs/`,
  index: (t: string, sha: string) => `t/${t}/index/${sha}`,
  indexes: (t: string) => `t/${t}/index/`,
  mapNode: (t: string, sha: string) => `t/${t}/maps/${sha.slice(0, 2)}/${sha}`,
  mapNodes: (t: string) => `t/${t}/maps/`,
  manifest: (t: string, id: string) => `t/${t}/snapshots/${id}.json`,
  manifests: (t: string) => `t/${t}/snapshots/`,
  failed: (t: string, id: string) => `t/${t}/failed/${id}.json`,
  failures: (t: string) => `t/${t}/failed/`,
  tag: (t: string, tag: string, id: string) => `t/${t}/tags/${tag}/${id}`,
  tags: (t: string) => `t/${t}/tags/`,
  /** A lock (`shared-<id>`, `exclusive-<id>`) or a prune marker (`pruned-<id>`): one LIST reads them all. */
  lock: (t: string, name: string) => `t/${t}/locks/${name}`,
  locks: (t: string) => `t/${t}/locks/`,
};

/** The last path segment of a key (the sha or the file name). */
export function basename(key: string): string {
  return key.slice(key.lastIndexOf('/') + 1);
}

/** Whether a key's last part is a SHA-256 in hex (64 digits): the name of a pack, a node pack or an index file. */
export function isHashNamed(key: string): boolean {
  return /^[0-9a-f]{64}$/.test(basename(key));
}

/** Whether an object named by its SHA-256 (a pack, a node pack, an index file) still has the bytes its name says. */
export function namedByHash(b: Uint8Array, key: string): boolean {
  return createHash('sha256').update(b).digest('hex') === basename(key);
}
