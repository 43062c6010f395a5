import { ErrorCodes, PvError } from '@pagevault/errors';

// A deliberately small alphabet: safe as a file name on every filesystem, needs no URL
// escaping in S3, and sorts the same as bytes and as UTF-16 code units.
const SEGMENT = /^[A-Za-z0-9._-]+$/;
const PREFIX_CHARS = /^[A-Za-z0-9._/-]*$/;
const MAX_KEY_LENGTH = 1024; // S3's limit, in bytes; our alphabet is one byte per character

/** Throws PV_INVALID_ARGUMENT unless `key` is a valid object key; returns it for chaining. */
export function validateObjectKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) {
    throw invalid(key, 'must be 1 to 1024 characters');
  }
  for (const segment of key.split('/')) {
    if (segment.length === 0) throw invalid(key, "must not be absolute or contain an empty segment ('//')");
    if (segment === '.' || segment === '..') throw invalid(key, "must not contain '.' or '..' segments");
    if (!SEGMENT.test(segment)) throw invalid(key, 'may contain only [A-Za-z0-9._/-]');
  }
  return key;
}

/**
 * Throws PV_INVALID_ARGUMENT unless `prefix` is a valid list prefix: empty, or the start of some
 * valid key (so "packs/" and "packs/ab" are fine, "/packs" and "../x" are not).
 */
export function validateObjectPrefix(prefix: string): string {
  if (typeof prefix !== 'string' || prefix.length > MAX_KEY_LENGTH || !PREFIX_CHARS.test(prefix)) {
    throw invalid(prefix, 'may contain only [A-Za-z0-9._/-]', 'prefix');
  }
  const segments = prefix.split('/');
  segments.forEach((segment, i) => {
    const last = i === segments.length - 1;
    if (segment.length === 0 && !(last && i > 0) && prefix.length > 0) {
      throw invalid(prefix, "must not be absolute or contain an empty segment ('//')", 'prefix');
    }
    // A trailing '.' or '..' may still grow into a valid segment ('..x'), so only whole ones fail.
    if (!last && (segment === '.' || segment === '..')) {
      throw invalid(prefix, "must not contain '.' or '..' segments", 'prefix');
    }
  });
  return prefix;
}

function invalid(key: unknown, why: string, what = 'object key'): PvError {
  return new PvError(ErrorCodes.INVALID_ARGUMENT, `invalid ${what} ${JSON.stringify(key)}: ${why}`, {
    details: { key },
  });
}

/** Throws PV_INVALID_ARGUMENT unless offset and length describe a byte range. */
export function validateRange(key: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new PvError(
      ErrorCodes.INVALID_ARGUMENT,
      `invalid range of object ${key}: offset ${offset}, length ${length} (both must be integers >= 0)`,
      { details: { key, offset, length } },
    );
  }
}
