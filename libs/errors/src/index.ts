/**
 * The one error base class of pagevault. Every error carries a stable code (PV_...), says whether
 * retrying the same operation may succeed (as kafkajs does), keeps its cause, and names the thing
 * it is about in `details`. Edges (HTTP, CLI exit codes) map codes; libraries only throw.
 */
export const ErrorCodes = {
  // stream format
  FRAME_TRUNCATED: 'PV_FRAME_TRUNCATED',
  FRAME_BAD_MAGIC: 'PV_FRAME_BAD_MAGIC',
  FRAME_BAD_CRC: 'PV_FRAME_BAD_CRC',
  FRAME_UNKNOWN_VERSION: 'PV_FRAME_UNKNOWN_VERSION',
  FRAME_UNKNOWN_TYPE: 'PV_FRAME_UNKNOWN_TYPE',
  FRAME_TOO_LARGE: 'PV_FRAME_TOO_LARGE',
  FRAME_MALFORMED: 'PV_FRAME_MALFORMED',
  STREAM_SEQUENCE: 'PV_STREAM_SEQUENCE',
  STREAM_ORDER: 'PV_STREAM_ORDER',
  STREAM_ADDRESS: 'PV_STREAM_ADDRESS',
  STREAM_DIGEST: 'PV_STREAM_DIGEST',
  STREAM_ABORTED: 'PV_STREAM_ABORTED',
  // capture
  NO_SUCH_PROCESS: 'PV_NO_SUCH_PROCESS',
  PERMISSION_DENIED: 'PV_PERMISSION_DENIED',
  PROCESS_EXITED: 'PV_PROCESS_EXITED',
  FREEZE_FAILED: 'PV_FREEZE_FAILED',
  READ_FAILED: 'PV_READ_FAILED',
  // storage
  OBJECT_NOT_FOUND: 'PV_OBJECT_NOT_FOUND',
  OBJECT_CORRUPT: 'PV_OBJECT_CORRUPT',
  PAGE_HASH_MISMATCH: 'PV_PAGE_HASH_MISMATCH',
  STORE_UNAVAILABLE: 'PV_STORE_UNAVAILABLE',
  STORE_FULL: 'PV_STORE_FULL',
  UNKNOWN_SNAPSHOT: 'PV_UNKNOWN_SNAPSHOT',
  /** No snapshot or restore job by that id on this service (jobs live in its memory: a restart forgets them). */
  UNKNOWN_JOB: 'PV_UNKNOWN_JOB',
  PARENT_MISSING: 'PV_PARENT_MISSING',
  SNAPSHOT_FAILED: 'PV_SNAPSHOT_FAILED',
  /** A mapped file a restore must read pages from is gone, unreadable, shorter, or another file now. */
  FILE_UNAVAILABLE: 'PV_FILE_UNAVAILABLE',
  /** A live restore's target does not map what the snapshot has pages in (another program, or its layout changed since). */
  TARGET_MISMATCH: 'PV_TARGET_MISMATCH',
  /** Another process holds a lock on the tenant that this operation cannot share (prune while a snapshot is ingested). */
  REPO_LOCKED: 'PV_REPO_LOCKED',
  /** A lock this process held went unrefreshed long enough that others may have taken it as stale. */
  LOCK_LOST: 'PV_LOCK_LOST',
  // transport and configuration
  LOG_UNAVAILABLE: 'PV_LOG_UNAVAILABLE',
  CONFIG_INVALID: 'PV_CONFIG_INVALID',
  INVALID_ARGUMENT: 'PV_INVALID_ARGUMENT',
  TIMEOUT: 'PV_TIMEOUT',
} as const;

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface PvErrorOptions {
  retriable?: boolean;
  cause?: unknown;
  details?: Record<string, unknown>;
}

export class PvError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: PvErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PvError';
    this.code = code;
    this.retriable = options.retriable ?? false;
    this.details = options.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retriable: this.retriable, ...this.details };
  }
}

export function isPvError(e: unknown, code?: ErrorCode): e is PvError {
  return e instanceof PvError && (code === undefined || e.code === code);
}

/** The errno name (`code`, e.g. 'ENOSPC') of a Node.js system error, if it has one. */
export function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof e.code === 'string' ? e.code : undefined;
}

/**
 * What a failed local file operation means to its caller, by errno, when retrying cannot help: the disk
 * is full (PV_STORE_FULL) or the file may not be written (PV_PERMISSION_DENIED); undefined for any other
 * errno, which each caller reports in its own terms. `why` ends the message ("... failed: no space left").
 */
export function fileFailure(errno: string | undefined): { code: ErrorCode; why: string } | undefined {
  switch (errno) {
    case 'ENOSPC':
    case 'EDQUOT':
      return { code: ErrorCodes.STORE_FULL, why: 'no space left' };
    case 'EACCES':
    case 'EPERM':
      return { code: ErrorCodes.PERMISSION_DENIED, why: 'permission denied' };
    case 'EROFS':
      return { code: ErrorCodes.PERMISSION_DENIED, why: 'read-only file system' };
    default:
      return undefined;
  }
}

/** Formats a 64-bit address the way /proc/PID/maps does, for messages. */
export function hex(addr: bigint | number): string {
  return '0x' + addr.toString(16);
}
export { exactJson } from './exact-json';
