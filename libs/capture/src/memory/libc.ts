import koffi from 'koffi';

/** The few libc calls capture needs, bound once through koffi. */
export interface Libc {
  /** ssize_t process_vm_readv(pid, local iovecs, n, remote iovecs, n, 0); -1 and errno on failure. */
  processVmReadv(
    pid: number,
    local: Buffer,
    liovcnt: number,
    remote: Buffer,
    riovcnt: number,
    flags: number,
  ): number;
  processVmWritev(
    pid: number,
    local: Buffer,
    liovcnt: number,
    remote: Buffer,
    riovcnt: number,
    flags: number,
  ): number;
  /** off_t lseek(fd, off, whence). */
  lseek(fd: number, offset: number, whence: number): number;
  /** int flock(fd, operation): 0, or -1 and errno. */
  flock(fd: number, operation: number): number;
  errno(): number;
  /** Address of a Buffer's first byte (its backing store never moves). */
  addressOf(buf: Buffer): number;
  pageSize: number;
}

export const ERRNO = koffi.os.errno as Record<string, number>;

let bound: Libc | null | undefined;

/** Binds libc on first use; returns null where it cannot be loaded (then /proc/PID/mem is the fallback). */
export function libc(): Libc | null {
  if (bound !== undefined) return bound;
  try {
    const lib = koffi.load('libc.so.6');
    const readv = lib.func(
      'long process_vm_readv(int pid, void *local, unsigned long liovcnt, void *remote, unsigned long riovcnt, unsigned long flags)',
    );
    const writev = lib.func(
      'long process_vm_writev(int pid, void *local, unsigned long liovcnt, void *remote, unsigned long riovcnt, unsigned long flags)',
    );
    const lseek = lib.func('int64_t lseek(int fd, int64_t offset, int whence)');
    const flock = lib.func('int flock(int fd, int operation)');
    const getpagesize = lib.func('int getpagesize(void)');
    bound = {
      processVmReadv: (...a) => Number(readv(...a)),
      processVmWritev: (...a) => Number(writev(...a)),
      lseek: (fd, off, whence) => Number(lseek(fd, off, whence)),
      flock: (fd, op) => Number(flock(fd, op)),
      errno: () => koffi.errno(),
      addressOf: (buf) => Number(koffi.address(buf)),
      pageSize: Number(getpagesize()),
    };
  } catch {
    bound = null;
  }
  return bound;
}

/** The system page size (4096 on x86_64). */
export function systemPageSize(): number {
  return libc()?.pageSize ?? 4096;
}

/** Errno name for messages ("EFAULT"), or the number. */
export function errnoName(n: number): string {
  for (const [name, v] of Object.entries(ERRNO)) if (v === n) return name;
  return String(n);
}
