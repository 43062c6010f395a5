import { ErrorCodes, PvError } from '@pagevault/errors';
import { keys } from './keys';
import type { Manifest } from './manifest';
import { readTags, removeTags } from './snapshot-refs';
import type { TenantStore } from './tenant-store';

/**
 * Removes snapshots: each one's manifest, then its tag markers (written after the manifest, removed after
 * it; a marker left by an interrupted forget names no snapshot and is ignored, and prune removes it).
 * Nothing else: the packs, index entries and page-map nodes only these snapshots reached stay until a
 * prune reclaims them. A snapshot is gone the moment its manifest is.
 */
export async function forgetSnapshots(t: TenantStore, ids: readonly string[]): Promise<void> {
  const tags = await readTags(t);
  for (const id of ids) {
    await t.store.delete(keys.manifest(t.tenant, id));
    await removeTags(t, id, tags.get(id) ?? []);
  }
}

/**
 * The `--keep-last n` policy: for each host and pid, every snapshot but the newest `n` by start time.
 * `ms` oldest first (as listManifests gives them); so is the result.
 */
export function beyondKeepLast(ms: readonly Manifest[], n: number): Manifest[] {
  if (!Number.isInteger(n) || n < 1) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `keep-last must be a whole number of at least 1, not ${n}`);
  }
  const byProcess = new Map<string, Manifest[]>();
  for (const m of ms) {
    const k = `${m.host}\0${m.pid}`;
    (byProcess.get(k) ?? byProcess.set(k, []).get(k)!).push(m);
  }
  const out = new Set([...byProcess.values()].flatMap((g) => g.slice(0, Math.max(0, g.length - n))));
  return ms.filter((m) => out.has(m));
}
