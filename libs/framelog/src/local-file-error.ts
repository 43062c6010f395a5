import { ErrorCodes, PvError } from '@pagevault/errors';

/**
 * A failure of a frame log's own local file (the embedded log's spill file, a producer's spool) as a typed
 * error: PV_STORE_FULL when the disk is full (retrying cannot help), PV_LOG_UNAVAILABLE otherwise.
 */
export function localFileError(e: unknown, what: string, dir: string, op: string): PvError {
  if (e instanceof PvError) return e;
  const code = typeof e === 'object' && e !== null && 'code' in e ? String(e.code) : undefined;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  return new PvError(
    full ? ErrorCodes.STORE_FULL : ErrorCodes.LOG_UNAVAILABLE,
    `${what}: ${op} of its file in ${dir} failed${full ? ': no space left' : ''} (${code ?? String(e)})`,
    { cause: e, details: { dir, op, errno: code } },
  );
}
