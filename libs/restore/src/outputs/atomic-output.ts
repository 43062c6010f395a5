import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';

/**
 * Runs `write` against `path + '.partial'`, then renames it to `path`. On failure the partial file is
 * removed and the error rethrown, so `path` only ever names a complete output.
 */
export async function atomicFile<T>(path: string, fsync: boolean, write: (tmp: string) => Promise<T>): Promise<T> {
  const tmp = `${path}.partial`;
  try {
    const out = await write(tmp);
    await rename(tmp, path);
    if (fsync) await syncDir(dirname(path));
    return out;
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
}

/**
 * Runs `write` in a fresh sibling directory of `dir`, then renames it to `dir`. `dir` must not exist or be
 * empty (an existing output is never merged into). On failure the temporary directory is removed.
 */
export async function atomicDir<T>(dir: string, fsync: boolean, write: (tmp: string) => Promise<T>): Promise<T> {
  const existing = await readdir(dir).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? [] : Promise.reject(e)));
  if (existing.length > 0) {
    throw new PvError(ErrorCodes.INVALID_ARGUMENT, `output directory ${dir} exists and is not empty`, { details: { path: dir } });
  }
  const tmp = join(dirname(dir), `.${basename(dir)}.partial-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    const out = await write(tmp);
    if (fsync) await syncDir(tmp);
    await rename(tmp, dir);
    if (fsync) await syncDir(dirname(dir));
    return out;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw e;
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
