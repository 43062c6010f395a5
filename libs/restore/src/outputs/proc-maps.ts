import { readFile } from 'node:fs/promises';
import { ErrorCodes, PvError } from '@pagevault/errors';

/** One line of /proc/PID/maps, as far as a restore target needs it. */
export interface TargetMapping {
  start: number;
  end: number;
  perms: string;
  /** File offset of `start` (0 for anonymous memory). */
  offset: number;
  /** `major:minor` in hex and inode of the mapped file, as the maps line gives them ('00:00', 0: none). */
  dev: string;
  inode: number;
  path: string;
}

/** What the target maps over one address range. */
export interface Coverage {
  /** The first sub-range no mapping covers, if any. */
  missing?: { start: number; end: number };
  /** Every covering mapping is readable and writable (process_vm_writev/readv can reach it). */
  readWrite: boolean;
}

export async function readTargetMaps(pid: number): Promise<TargetMapping[]> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/maps`, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') throw new PvError(ErrorCodes.NO_SUCH_PROCESS, `no process ${pid}`, { cause: e, details: { pid } });
    throw new PvError(ErrorCodes.PERMISSION_DENIED, `cannot read /proc/${pid}/maps`, { cause: e, details: { pid } });
  }
  return parseMaps(text);
}

export function parseMaps(text: string): TargetMapping[] {
  const out: TargetMapping[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+)\s+(\S+)\s+([0-9a-f]+)\s+(\S+)\s+(\d+)\s*(.*)$/.exec(line);
    if (m) out.push({ start: parseInt(m[1]!, 16), end: parseInt(m[2]!, 16), perms: m[3]!, offset: parseInt(m[4]!, 16), dev: m[5]!, inode: Number(m[6]!), path: m[7]! });
  }
  return out;
}

/** Which part of [start, end) the ascending, disjoint `maps` leave uncovered, and whether all is read-write. */
export function coverage(maps: TargetMapping[], start: number, end: number): Coverage {
  let at = start;
  let readWrite = true;
  for (const m of maps) {
    if (m.end <= at) continue;
    if (m.start >= end) break;
    if (m.start > at) return { missing: { start: at, end: m.start }, readWrite };
    readWrite &&= m.perms[0] === 'r' && m.perms[1] === 'w';
    at = m.end;
    if (at >= end) return { readWrite };
  }
  return at >= end ? { readWrite } : { missing: { start: at, end }, readWrite };
}

/**
 * Whether the target maps [start, end) privately with the backing of the snapshot's VMA: the file `path`
 * with `pgoff` at `start` (and, given `file`, that very file: its device and inode, as a restore on the
 * snapshot's host can tell), or anonymous memory when `path` is empty. Then a page the target never
 * touched reads as an untouched page of the snapshot does (the file's bytes, or zeros).
 */
export function sameBacking(maps: TargetMapping[], start: number, end: number, path: string, pgoff: number, file?: { dev: string; inode: number }): boolean {
  for (const m of maps) {
    if (m.end <= start) continue;
    if (m.start >= end) break;
    if (m.perms[3] !== 'p') return false;
    if (path === '' ? m.path !== '' && !m.path.startsWith('[') : m.path !== path || m.offset - m.start !== pgoff - start) return false;
    if (file && (m.dev !== file.dev || m.inode !== file.inode)) return false;
  }
  return true;
}
