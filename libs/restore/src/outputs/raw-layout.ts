import { hex } from '@pagevault/errors';
import { Consistency, SnapshotMode, idToHex, type SnapshotBegin, type VmaHeader } from '@pagevault/format';
import type { EndInfo } from './snapshot-walk';
import type { PageCounts } from './output-types';
import { kindName, pagesOf, perms } from './vma-util';

/** One VMA in layout.json. Addresses are hex strings, as /proc/PID/maps writes them. */
export interface RawVmaEntry {
  index: number;
  start: string;
  end: string;
  length: number;
  prot: number;
  perms: string;
  flags: number;
  kind: string;
  path: string;
  pgoff: number;
  dev: string;
  inode: number;
  vmFlags: string;
  reason: string;
  sharedKey: string;
  /** File name of the VMA's image in the output directory, or null for a VMA without contents. */
  image: string | null;
  pages: PageCounts & { untouched: number };
}

/** layout.json: what the images are and where they belong. */
export interface RawLayout {
  format: 'pagevault-raw-images';
  version: 1;
  snapshot: SnapshotInfo;
  vmas: RawVmaEntry[];
}

export interface SnapshotInfo {
  id: string;
  pid: number;
  host: string;
  tenant: string;
  /** The command line, split at NULs. */
  argv: string[];
  startTime: string;
  startTimeMs: number;
  pageSize: number;
  mode: string;
  consistency: string;
  parentId: string | null;
  groupId: string | null;
  /** frameCount and digest: of the stream the images were written from; absent for a direct restore from a repository. */
  end?: { vmaCount: number; dataPages: number; zeroPages: number; filePages: number; frameCount?: number; digest?: string };
}

export function imageName(v: VmaHeader): string {
  return `vma-${v.index}-${v.start.toString(16)}-${v.end.toString(16)}.img`;
}

export function snapshotInfo(id: Uint8Array, b: SnapshotBegin): SnapshotInfo {
  return {
    id: idToHex(id),
    pid: b.pid,
    host: b.host,
    tenant: b.tenant,
    argv: splitCmdline(b.cmdline),
    startTime: new Date(b.startTimeMs).toISOString(),
    startTimeMs: b.startTimeMs,
    pageSize: b.pageSize,
    mode: SnapshotMode[b.mode] ?? String(b.mode),
    consistency: Consistency[b.consistency] ?? String(b.consistency),
    parentId: b.parentId ? idToHex(b.parentId) : null,
    groupId: b.groupId ? idToHex(b.groupId) : null,
  };
}

export function endInfo(e: EndInfo): NonNullable<SnapshotInfo['end']> {
  const { vmaCount, dataPages, zeroPages, filePages, frameCount } = e;
  return { vmaCount, dataPages, zeroPages, filePages, ...(e.digest ? { frameCount, digest: Buffer.from(e.digest).toString('hex') } : {}) };
}

export function vmaEntry(v: VmaHeader, pageSize: number, image: string | null, c: PageCounts): RawVmaEntry {
  const untouched = pagesOf(v, pageSize) - c.data - c.zero - c.file - c.fileMissing;
  return {
    index: v.index, start: hex(v.start), end: hex(v.end), length: v.end - v.start, prot: v.prot, perms: perms(v),
    flags: v.flags, kind: kindName(v.kind), path: v.path, pgoff: v.pgoff, dev: v.dev, inode: v.inode,
    vmFlags: v.vmFlags, reason: v.reason, sharedKey: v.sharedKey, image, pages: { ...c, untouched },
  };
}

/** /proc/PID/cmdline style (NUL-separated, usually NUL-terminated) to argv. */
export function splitCmdline(cmdline: string): string[] {
  const parts = cmdline.split('\0');
  if (parts.length > 0 && parts[parts.length - 1] === '') parts.pop();
  return parts;
}
