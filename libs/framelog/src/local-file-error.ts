import { ErrorCodes, PvError, errnoOf, fileFailure } from '@pagevault/errors';

/**
 * A failure of a frame log's own local file (the embedded log's spill file, a producer's spool) as a typed
 * error: PV_STORE_FULL when the disk is full, PV_PERMISSION_DENIED when the file may not be written
 * (retrying helps neither), PV_LOG_UNAVAILABLE otherwise.
 */
export function localFileError(e: unknown, what: string, dir: string, op: string): PvError {
  if (e instanceof PvError) return e;
  const code = errnoOf(e);
  const failure = fileFailure(code);
  return new PvError(
    failure?.code ?? ErrorCodes.LOG_UNAVAILABLE,
    `${what}: ${op} of its file in ${dir} failed${failure ? `: ${failure.why}` : ''} (${code ?? String(e)})`,
    { cause: e, details: { dir, op, errno: code } },
  );
}
