import type { Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isMissing, mapFsError } from './fs-errors.js';
import type { ObjectInfo } from './object-store.js';

/** Marks in-progress temp files; '~' cannot occur in a key, so no key ever looks like one. */
export const TEMP_MARKER = '~';
const NAME = /^[A-Za-z0-9._-]+$/;
const STAT_BATCH = 64; // stats in flight per directory: bounds open requests, keeps the walk quick

/**
 * Yields the files under `root` whose key starts with `prefix`, in the byte order S3 lists keys.
 * A depth-first walk is in key order only if a directory "a" sorts as "a/" among its siblings:
 * "a-b" < "a/c" < "a0" as keys, although "a" < "a-b" as names. Memory: one directory's entries
 * per level of depth.
 */
export async function* listDirectory(
  root: string,
  prefix: string,
  store: string,
): AsyncGenerator<ObjectInfo> {
  const slash = prefix.lastIndexOf('/');
  yield* walk(root, prefix.slice(0, slash + 1), prefix, store);
}

async function* walk(
  root: string,
  dirKey: string,
  prefix: string,
  store: string,
): AsyncGenerator<ObjectInfo> {
  let entries: Dirent[];
  try {
    entries = await readdir(join(root, ...dirKey.split('/').filter(Boolean)), { withFileTypes: true });
  } catch (e) {
    if (isMissing(e)) return;
    throw mapFsError(e, 'list', dirKey || '(root)', store);
  }
  const wanted = entries
    .filter((d) => NAME.test(d.name) && (d.isFile() || d.isDirectory()))
    .map((d) => ({ key: dirKey + d.name + (d.isDirectory() ? '/' : ''), isDir: d.isDirectory() }))
    .filter(({ key, isDir }) => key.startsWith(prefix) || (isDir && prefix.startsWith(key)))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));

  for (let i = 0; i < wanted.length;) {
    const batch: { key: string; isDir: boolean }[] = [];
    while (i < wanted.length && batch.length < STAT_BATCH && !wanted[i].isDir) batch.push(wanted[i++]);
    if (batch.length > 0) {
      yield* await statFiles(root, batch, store);
      continue;
    }
    yield* walk(root, wanted[i++].key, prefix, store);
  }
}

async function statFiles(root: string, files: { key: string }[], store: string): Promise<ObjectInfo[]> {
  const infos = await Promise.all(
    files.map(async ({ key }): Promise<ObjectInfo | undefined> => {
      try {
        const s = await stat(join(root, ...key.split('/')));
        return { key, size: s.size, modifiedMs: Math.round(s.mtimeMs) };
      } catch (e) {
        if (isMissing(e)) return undefined; // deleted while we listed: it is simply gone
        throw mapFsError(e, 'list', key, store);
      }
    }),
  );
  return infos.filter((info): info is ObjectInfo => info !== undefined);
}

/**
 * The temp files of unfinished puts under the directory of `dirKey` (any depth), with their sizes and
 * modification times: what a writer killed between its open and its rename left behind.
 */
export async function* unfinishedPuts(root: string, dirKey: string, store: string): AsyncGenerator<{ path: string; size: number; modifiedMs: number }> {
  const dir = join(root, ...dirKey.split('/').filter(Boolean));
  let entries: Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (e) {
    if (isMissing(e)) return;
    throw mapFsError(e, 'list', dirKey || '(root)', store);
  }
  for (const d of entries) {
    if (d.isDirectory() && NAME.test(d.name)) yield* unfinishedPuts(root, `${dirKey}${d.name}/`, store);
    else if (d.isFile() && d.name.includes(TEMP_MARKER) && d.name.endsWith('.tmp')) {
      const s = await stat(join(dir, d.name)).catch((e: unknown) => (isMissing(e) ? undefined : Promise.reject(e)));
      if (s) yield { path: join(dir, d.name), size: s.size, modifiedMs: s.mtimeMs };
    }
  }
}
