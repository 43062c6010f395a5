import { ErrorCodes, PvError } from '@pagevault/errors';

/** PV_OBJECT_NOT_FOUND naming the key and the store; shared so every adapter words it alike. */
export function objectNotFound(key: string, store: string, cause?: unknown): PvError {
  return new PvError(ErrorCodes.OBJECT_NOT_FOUND, `object ${key} not found in ${store}`, {
    cause,
    details: { key, store },
  });
}

/** PV_OBJECT_CORRUPT for a range that runs past the end of the object. */
export function objectShorter(
  key: string,
  store: string,
  offset: number,
  length: number,
  size: number,
): PvError {
  return new PvError(
    ErrorCodes.OBJECT_CORRUPT,
    `object ${key} in ${store} is shorter than expected: ` +
      `range [${offset}, ${offset + length}) but the object has ${size} bytes`,
    { details: { key, store, offset, length, size } },
  );
}
