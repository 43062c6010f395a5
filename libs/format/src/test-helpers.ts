// Shared by the format's specs only (excluded from the build).
import { PvError } from '@pagevault/errors';

export const ID = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

/** The PvError code fn throws, or 'no error'; anything that is not a PvError is rethrown. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof PvError) return e.code;
    throw e;
  }
  return 'no error';
}
