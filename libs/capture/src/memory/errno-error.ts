import { ErrorCodes, PvError, hex } from '@pagevault/errors';
import { ERRNO, errnoName } from './libc';

/**
 * Maps the errno of a failed process_vm_readv/writev or /proc/PID/mem access to a PvError naming the
 * process and address. EFAULT is not mapped here: the callers treat it as "this page went away".
 */
export function memoryAccessError(
  errno: number,
  pid: number,
  op: 'read' | 'write',
  addr: number,
  cause?: unknown,
): PvError {
  const name = errnoName(errno);
  const details = { pid, address: hex(addr), errno: name, op };
  const opts = (retriable: boolean) => ({ retriable, details, cause });
  if (errno === ERRNO.ESRCH) {
    return new PvError(
      ErrorCodes.PROCESS_EXITED,
      `process ${pid} exited during the ${op} at ${hex(addr)}`,
      opts(false),
    );
  }
  if (errno === ERRNO.EPERM || errno === ERRNO.EACCES) {
    return new PvError(
      ErrorCodes.PERMISSION_DENIED,
      `cannot ${op} the memory of process ${pid} (${name}): the agent needs CAP_SYS_PTRACE or the same user as the target (and no stricter Yama ptrace_scope)`,
      opts(false),
    );
  }
  if (errno === ERRNO.ENOMEM || errno === ERRNO.EINTR || errno === ERRNO.EAGAIN) {
    return new PvError(
      ErrorCodes.READ_FAILED,
      `${op} of process ${pid} at ${hex(addr)} failed (${name}), may succeed later`,
      opts(true),
    );
  }
  return new PvError(
    ErrorCodes.READ_FAILED,
    `${op} of process ${pid} at ${hex(addr)} failed (${name})`,
    opts(false),
  );
}

/** errno of a Node fs error (its negative `errno` field), or EIO when there is none. */
export function fsErrno(e: unknown): number {
  const n = (e as { errno?: unknown }).errno;
  return typeof n === 'number' ? Math.abs(n) : ERRNO.EIO!;
}
