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
