import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ErrorCodes, PvError, errnoOf, fileFailure } from '@pagevault/errors';

/** Errno codes meaning "there is no object at this path". */
export function isMissing(e: unknown): boolean {
  const code = errnoOf(e);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

/** Maps a filesystem error to a PvError that names the operation, the key and the store. */
export function mapFsError(e: unknown, op: string, key: string, description: string): PvError {
  if (e instanceof PvError) return e;
  const code = errnoOf(e);
  const where = `${op} of object ${key} in ${description}`;
  const options = (retriable: boolean) => ({
    retriable,
    cause: e,
    details: { key, op, store: description, errno: code },
  });
  const failure = fileFailure(code);
  // Retrying cannot free space or grant a permission; the operator has to.
  if (failure) return new PvError(failure.code, `${where} failed: ${failure.why} (${code})`, options(false));
  switch (code) {
    case 'ENOENT':
      return new PvError(
        ErrorCodes.OBJECT_NOT_FOUND,
        `object ${key} not found in ${description}`,
        options(false),
      );
    case 'ENOTDIR':
    case 'EISDIR':
    case 'EEXIST':
      return new PvError(
        ErrorCodes.INVALID_ARGUMENT,
        `${where} failed: the key collides with a directory of other keys (${code})`,
        options(false),
      );
    case 'EMFILE':
    case 'ENFILE':
    case 'EAGAIN':
    case 'EBUSY':
    case 'EINTR':
      return new PvError(
        ErrorCodes.STORE_UNAVAILABLE,
        `${where} failed: ${code}, may succeed later`,
        options(true),
      );
    default:
      return new PvError(ErrorCodes.STORE_UNAVAILABLE, `${where} failed: ${describe(e)}`, options(false));
  }
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * mkdir -p that fails with the real reason: Node's recursive mkdir reports ENOENT where a directory
 * could not be made (on a read-only file system, say), which reads as "not found". Each missing level
 * is made on its own, so the errno is the one that stopped it (EROFS, EACCES, ENOSPC...).
 */
export async function mkdirp(path: string): Promise<void> {
  try {
    await mkdir(path);
  } catch (e) {
    const code = errnoOf(e);
    if (code === 'EEXIST') return;
    const parent = dirname(path);
    if (code !== 'ENOENT' || parent === path) throw e;
    await mkdirp(parent);
    await mkdir(path).catch((again: unknown) => {
      if (errnoOf(again) !== 'EEXIST') throw again;
    });
  }
}
