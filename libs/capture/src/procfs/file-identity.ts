import { statSync, type BigIntStats } from 'node:fs';

/**
 * A device number as /proc/PID/maps prints it: `major:minor` in hex, at least two digits each
 * (show_map_vma's "%02x:%02x"). st_dev is glibc's dev_t (gnu_dev_major/minor): major in bits 8-19
 * and 44-63, minor in bits 0-7 and 20-43.
 */
export function mapsDev(dev: bigint): string {
  const major = ((dev & 0xfff00n) >> 8n) | ((dev & 0xfffff00000000000n) >> 32n);
  const minor = (dev & 0xffn) | ((dev & 0xffffff00000n) >> 12n);
  return `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}`;
}

/** True when `st` is the file /proc/PID/maps names by `dev` and `inode`. */
export function isMappedFile(st: Pick<BigIntStats, 'dev' | 'ino'>, dev: string, inode: number): boolean {
  return st.ino === BigInt(inode) && mapsDev(st.dev) === dev;
}

/**
 * Whether opening `path` here, now, gives the file a process maps as `dev`/`inode`: not when the path
 * is gone, names another file (replaced by a rename, as package managers do), or resolves elsewhere
 * from this mount namespace than from the process's (a container's root). Cached per path, dev and
 * inode: one stat per mapped file, not per VMA.
 */
export class MappedFileCheck {
  private readonly seen = new Map<string, boolean>();

  constructor(private readonly stat: (path: string) => BigIntStats | undefined = statHere) {}

  isHere(path: string, dev: string, inode: number): boolean {
    const key = `${dev} ${inode} ${path}`;
    let ok = this.seen.get(key);
    if (ok === undefined) {
      const st = this.stat(path);
      ok = st !== undefined && st.isFile() && isMappedFile(st, dev, inode);
      this.seen.set(key, ok);
    }
    return ok;
  }
}

function statHere(path: string): BigIntStats | undefined {
  try {
    return statSync(path, { bigint: true });
  } catch {
    return undefined;
  }
}
