import { randomBytes } from 'node:crypto';
import { link, lstat, open, readdir, rename, rm, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { mkdirp } from '@pagevault/objstore';
import { outputError } from './output-file';

/**
 * Runs `write` against `path + '.partial'`, then moves it to `path`. On failure the partial file is
 * removed and the error rethrown, so `path` only ever names a complete output. An existing `path` is
 * refused before anything is written (and, should one appear meanwhile, at the end: the partial file is
 * linked to `path`, which fails if it exists), unless `replace`.
 */
export function atomicFile<T>(path: string, fsync: boolean, write: (tmp: string) => Promise<T>, replace = false): Promise<T> {
  return writeAtomicFile(path, fsync, write, replace).catch((e: unknown) => Promise.reject(outputError(e, path, 'writing')));
}

async function writeAtomicFile<T>(path: string, fsync: boolean, write: (tmp: string) => Promise<T>, replace: boolean): Promise<T> {
  if (!replace && (await exists(path))) throw existsError(path, 'file');
  const tmp = `${path}.partial`;
  try {
    const out = await write(tmp);
    if (replace) await rename(tmp, path);
    else {
      await link(tmp, path).catch((e: NodeJS.ErrnoException) => Promise.reject(e.code === 'EEXIST' ? existsError(path, 'file') : e));
      await unlink(tmp);
    }
    if (fsync) await syncDir(dirname(path));
    return out;
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Runs `write` in a fresh sibling directory of `dir`, then renames it to `dir`. An existing output is
 * never merged into: a non-empty `dir` is refused before anything is written, or with `replace` moved
 * aside, replaced, and removed. On failure the temporary directory is removed (and a replaced `dir` put
 * back).
 */
export function atomicDir<T>(dir: string, fsync: boolean, write: (tmp: string) => Promise<T>, replace = false): Promise<T> {
  return writeAtomicDir(dir, fsync, write, replace).catch((e: unknown) => Promise.reject(outputError(e, dir, 'writing')));
}

async function writeAtomicDir<T>(dir: string, fsync: boolean, write: (tmp: string) => Promise<T>, replace: boolean): Promise<T> {
  const existing = await readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  if (existing.length > 0 && !replace) throw existsError(dir, 'directory');
  const sibling = (what: string) => join(dirname(dir), `.${basename(dir)}.${what}-${randomBytes(4).toString('hex')}`);
  const tmp = sibling('partial');
  await mkdirp(tmp);
  try {
    const out = await write(tmp);
    if (fsync) await syncDir(tmp);
    const old = existing.length > 0 ? sibling('replaced') : undefined;
    if (old) await rename(dir, old);
    try {
      await rename(tmp, dir);
    } catch (e) {
      if (old) await rename(old, dir).catch(() => undefined);
      throw e;
    }
    if (fsync) await syncDir(dirname(dir));
    if (old) await rm(old, { recursive: true, force: true });
    return out;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? false : Promise.reject(e)),
  );
}

function existsError(path: string, what: 'file' | 'directory'): PvError {
  const why = what === 'file' ? 'exists' : 'exists and is not empty';
  return new PvError(ErrorCodes.INVALID_ARGUMENT, `output ${what} ${path} ${why} (not replaced unless asked to)`, { details: { path } });
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
