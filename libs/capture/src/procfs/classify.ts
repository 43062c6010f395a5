import { Prot, VmaFlag, VmaKind } from '@pagevault/format';
import type { MapsEntry } from './maps';

/** How one VMA is described in the stream and how its pages are read. */
export interface VmaClass {
  kind: VmaKind;
  prot: number;
  flags: number;
  /** Why no contents are read (NoContents VMAs), else ''. */
  reason: string;
  /** Identity of a shared object, so it is dumped once per snapshot, else ''. */
  sharedKey: string;
  /**
   * Present pages still backed by the page cache of a file that can be opened again at restore may be
   * sent as file runs instead of being copied. False for deleted files, memfds and SysV segments.
   */
  fileRuns: boolean;
  /**
   * Read through /proc/PID/mem rather than process_vm_readv: the VMA is not readable (PROT_NONE, -w-)
   * but may still hold data, and only the FOLL_FORCE path of /proc/PID/mem can read it.
   */
  forceRead: boolean;
}

export interface ClassifyOptions {
  /** Treat MADV_DONTDUMP VMAs as unsupported (skipped). Default false: a restore needs their contents. */
  respectDontDump?: boolean;
  /**
   * Whether the mapped file can be opened again by its path and be the same file (MappedFileCheck). A
   * private file VMA whose file cannot gets its pages copied instead of sent as file runs, which only a
   * restore that opens the same file can fill. Default: every file not deleted can.
   */
  reopens?: (e: MapsEntry) => boolean;
}

const SPECIAL: Record<string, VmaKind> = {
  '[vdso]': VmaKind.Vdso,
  '[vvar]': VmaKind.Vvar,
  '[vvar_vclock]': VmaKind.Vvar,
  '[vsyscall]': VmaKind.Vsyscall,
};

const UNSUPPORTED_FLAGS: [flag: string, reason: string][] = [
  ['io', 'VM_IO (device memory)'],
  ['pf', 'VM_PFNMAP (raw page frames)'],
  ['ht', 'hugetlb'],
];

/** True for shared mappings of shmem objects: MAP_SHARED|MAP_ANONYMOUS, memfd, SysV shm. */
export function isShmemPath(path: string): boolean {
  return path.startsWith('/memfd:') || path.startsWith('/SYSV') || path.startsWith('/dev/zero (deleted)');
}

/** A file a restorer could open again by name. */
function reopenable(e: MapsEntry): boolean {
  return e.inode !== 0 && e.path.startsWith('/') && !e.path.endsWith(' (deleted)') && !isShmemPath(e.path);
}

/** Classifies a VMA from its maps line and smaps VmFlags. */
export function classifyVma(e: MapsEntry, opts: ClassifyOptions = {}): VmaClass {
  const p = e.perms;
  const prot =
    (p[0] === 'r' ? Prot.Read : 0) | (p[1] === 'w' ? Prot.Write : 0) | (p[2] === 'x' ? Prot.Exec : 0);
  const shared = p[3] === 's';
  const base: VmaClass = {
    kind: VmaKind.PrivateAnon,
    prot,
    flags: shared ? VmaFlag.Shared : 0,
    reason: '',
    sharedKey: '',
    fileRuns: false,
    forceRead: false,
  };
  const special = SPECIAL[e.path];
  if (special !== undefined) return { ...base, kind: special, flags: base.flags | VmaFlag.NoContents };

  const vmFlags = new Set(e.vmFlags.split(' ').filter(Boolean));
  const unsupported = (reason: string): VmaClass => ({
    ...base,
    kind: VmaKind.Unsupported,
    flags: base.flags | VmaFlag.NoContents,
    reason,
  });
  for (const [flag, reason] of UNSUPPORTED_FLAGS) if (vmFlags.has(flag)) return unsupported(reason);
  if (opts.respectDontDump && vmFlags.has('dd')) return unsupported('VM_DONTDUMP (madvise MADV_DONTDUMP)');
  // Without 'mr' (VM_MAYREAD) not even FOLL_FORCE can read the pages; VmFlags are '' when only maps was read.
  if (!(prot & Prot.Read) && vmFlags.size > 0 && !vmFlags.has('mr'))
    return unsupported('unreadable (no VM_MAYREAD)');
  const forceRead = !(prot & Prot.Read);

  if (e.path === '[heap]') return { ...base, kind: VmaKind.Heap, forceRead };
  if (e.path.startsWith('[stack')) return { ...base, kind: VmaKind.Stack, forceRead };
  if (shared) {
    if (isShmemPath(e.path) || e.inode === 0) {
      return { ...base, kind: VmaKind.SharedAnon, sharedKey: `shmem:${e.dev}:${e.inode}`, forceRead };
    }
    return { ...base, kind: VmaKind.SharedFile, sharedKey: `file:${e.dev}:${e.inode}`, forceRead };
  }
  if (e.inode === 0 || !e.path.startsWith('/')) return { ...base, kind: VmaKind.PrivateAnon, forceRead };
  return { ...base, kind: VmaKind.PrivateFile, fileRuns: reopenable(e) && (opts.reopens?.(e) ?? true), forceRead };
}
