import { ErrorCodes, PvError } from '@pagevault/errors';

/** Errno codes meaning "there is no object at this path". */
export function isMissing(e: unknown): boolean {
  const code = errno(e);
  return code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR';
}

export function errno(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string'
    ? e.code
    : undefined;
}

/** Maps a filesystem error to a PvError that names the operation, the key and the store. */
export function mapFsError(e: unknown, op: string, key: string, description: string): PvError {
  if (e instanceof PvError) return e;
  const code = errno(e);
  const where = `${op} of object ${key} in ${description}`;
  const options = (retriable: boolean) => ({
    retriable,
    cause: e,
    details: { key, op, store: description, errno: code },
  });
  switch (code) {
    case 'ENOENT':
      return new PvError(
        ErrorCodes.OBJECT_NOT_FOUND,
        `object ${key} not found in ${description}`,
        options(false),
      );
    case 'ENOSPC':
    case 'EDQUOT':
      // Retrying cannot free space; the operator has to.
      return new PvError(ErrorCodes.STORE_FULL, `${where} failed: no space left (${code})`, options(false));
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new PvError(
        ErrorCodes.PERMISSION_DENIED,
        `${where} failed: permission denied (${code})`,
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
