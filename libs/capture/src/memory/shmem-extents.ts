import { closeSync, openSync } from 'node:fs';
import { libc } from './libc';

const SEEK_DATA = 3;
const SEEK_HOLE = 4;

/**
 * Page ranges of a shared-memory VMA that hold data in the shmem object itself, as pairs
 * [firstPage, endPage) relative to the VMA start, ascending. Pagemap only shows the pages this process
 * has mapped; a page another process (e.g. a forked child) wrote is in the object but not in our page
 * table, yet it is part of what this process sees. SEEK_DATA/SEEK_HOLE on /proc/PID/map_files finds them
 * without touching the target. Returns undefined when map_files cannot be opened (it needs
 * CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN): capture then falls back to pagemap alone.
 */
export function shmemExtents(
  pid: number,
  vma: { start: number; end: number; offset: number },
  pageSize: number,
): number[] | undefined {
  const c = libc();
  if (!c) return undefined;
  let fd: number;
  try {
    fd = openSync(`/proc/${pid}/map_files/${vma.start.toString(16)}-${vma.end.toString(16)}`, 'r');
  } catch {
    return undefined;
  }
  try {
    const lo = vma.offset;
    const hi = vma.offset + (vma.end - vma.start);
    const out: number[] = [];
    let pos = lo;
    while (pos < hi) {
      const d = c.lseek(fd, pos, SEEK_DATA);
      if (d < 0 || d >= hi) break; // ENXIO: no data after pos
      const h = Math.min(c.lseek(fd, d, SEEK_HOLE), hi);
      if (h <= d) break;
      out.push(Math.floor((d - lo) / pageSize), Math.ceil((h - lo) / pageSize));
      pos = h;
    }
    return out;
  } finally {
    closeSync(fd);
  }
}
