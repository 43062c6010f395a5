import { ErrorCodes, type ErrorCode } from '@pagevault/errors';

/** Exit codes scripts can rely on (also listed in `pagevault --help`). */
export const Exit = {
  ok: 0,
  failure: 1,
  usage: 2,
  notFound: 3,
  corrupt: 4,
  permission: 5,
  process: 6,
  unavailable: 7,
  locked: 8,
  /** No space left where pagevault writes: the store, a restore's output. */
  full: 9,
} as const;

const BY_CODE: Partial<Record<ErrorCode, number>> = {
  [ErrorCodes.INVALID_ARGUMENT]: Exit.usage,
  [ErrorCodes.CONFIG_INVALID]: Exit.usage,
  [ErrorCodes.UNKNOWN_SNAPSHOT]: Exit.notFound,
  [ErrorCodes.UNKNOWN_JOB]: Exit.notFound,
  [ErrorCodes.OBJECT_NOT_FOUND]: Exit.corrupt,
  [ErrorCodes.OBJECT_CORRUPT]: Exit.corrupt,
  [ErrorCodes.PAGE_HASH_MISMATCH]: Exit.corrupt,
  [ErrorCodes.PARENT_MISSING]: Exit.corrupt,
  [ErrorCodes.FILE_UNAVAILABLE]: Exit.corrupt,
  [ErrorCodes.PERMISSION_DENIED]: Exit.permission,
  [ErrorCodes.NO_SUCH_PROCESS]: Exit.process,
  [ErrorCodes.PROCESS_EXITED]: Exit.process,
  [ErrorCodes.FREEZE_FAILED]: Exit.process,
  [ErrorCodes.TARGET_MISMATCH]: Exit.process,
  [ErrorCodes.STORE_UNAVAILABLE]: Exit.unavailable,
  [ErrorCodes.LOG_UNAVAILABLE]: Exit.unavailable,
  [ErrorCodes.TIMEOUT]: Exit.unavailable,
  [ErrorCodes.REPO_LOCKED]: Exit.locked,
  [ErrorCodes.STORE_FULL]: Exit.full,
};

export function exitCodeFor(code: ErrorCode): number {
  return BY_CODE[code] ?? Exit.failure;
}
