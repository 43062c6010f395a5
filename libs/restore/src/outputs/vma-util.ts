import { Prot, VmaFlag, VmaKind, type VmaHeader } from '@pagevault/format';

/** True when the stream carries this VMA's pages (not vdso/vvar/unsupported, not dumped under another VMA). */
export function hasContents(v: VmaHeader): boolean {
  return (v.flags & (VmaFlag.NoContents | VmaFlag.SharedElsewhere)) === 0;
}

/** The VMA's permissions as /proc/PID/maps shows them, e.g. "r-xp". */
export function perms(v: Pick<VmaHeader, 'prot' | 'flags'>): string {
  return (
    (v.prot & Prot.Read ? 'r' : '-') +
    (v.prot & Prot.Write ? 'w' : '-') +
    (v.prot & Prot.Exec ? 'x' : '-') +
    (v.flags & VmaFlag.Shared ? 's' : 'p')
  );
}

export function kindName(kind: VmaKind): string {
  return VmaKind[kind] ?? `Kind${kind}`;
}

/** Why a VMA carries no pages, for people: its reason (unsupported), "shared elsewhere", "kernel's"; else ''. */
export function vmaNote(v: Pick<VmaHeader, 'flags' | 'reason' | 'sharedKey'>): string {
  if (v.reason) return `not read: ${v.reason}`;
  if (v.flags & VmaFlag.SharedElsewhere) return `shared: dumped under an earlier VMA (${v.sharedKey})`;
  if (v.flags & VmaFlag.NoContents) return "not read: the kernel's (vdso, vvar, vsyscall)";
  return '';
}

/** True for VMAs that map a file (they go into NT_FILE and may have file runs). */
export function mapsFile(v: VmaHeader): boolean {
  return (v.kind === VmaKind.PrivateFile || v.kind === VmaKind.SharedFile) && v.path.length > 0;
}

export function pagesOf(v: VmaHeader, pageSize: number): number {
  return (v.end - v.start) / pageSize;
}
