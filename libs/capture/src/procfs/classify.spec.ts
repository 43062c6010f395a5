import { describe, expect, it } from 'vitest';
import { Prot, VmaFlag, VmaKind } from '@pagevault/format';
import { classifyVma } from './classify';
import type { MapsEntry } from './maps';

const vma = (
  perms: string,
  path = '',
  vmFlags = 'rd wr mr mw me',
  inode = path.startsWith('/') ? 77 : 0,
): MapsEntry => ({
  start: 0x10000,
  end: 0x20000,
  perms,
  offset: 0,
  dev: '00:05',
  inode,
  path,
  vmFlags,
});

describe('classifyVma', () => {
  it.each([
    ['private anonymous', vma('rw-p'), VmaKind.PrivateAnon],
    ['named anonymous', vma('rw-p', '[anon:jit]'), VmaKind.PrivateAnon],
    ['private file', vma('r-xp', '/usr/bin/cat'), VmaKind.PrivateFile],
    ['shared file', vma('rw-s', '/data/db'), VmaKind.SharedFile],
    ['MAP_SHARED|MAP_ANONYMOUS', vma('rw-s', '/dev/zero (deleted)'), VmaKind.SharedAnon],
    ['memfd', vma('rw-s', '/memfd:buf (deleted)'), VmaKind.SharedAnon],
    ['SysV shm', vma('rw-s', '/SYSV0000beef (deleted)'), VmaKind.SharedAnon],
    ['heap', vma('rw-p', '[heap]'), VmaKind.Heap],
    ['stack', vma('rw-p', '[stack]'), VmaKind.Stack],
    ['vdso', vma('r-xp', '[vdso]'), VmaKind.Vdso],
    ['vvar', vma('r--p', '[vvar]'), VmaKind.Vvar],
    ['vvar_vclock', vma('r--p', '[vvar_vclock]'), VmaKind.Vvar],
    ['vsyscall', vma('--xp', '[vsyscall]', ''), VmaKind.Vsyscall],
  ])('%s', (_, e, kind) => {
    expect(classifyVma(e).kind).toBe(kind);
  });

  it('reads protection and MAP_SHARED from the permissions', () => {
    const c = classifyVma(vma('r-xs', '/x'));
    expect(c.prot).toBe(Prot.Read | Prot.Exec);
    expect(c.flags & VmaFlag.Shared).toBeTruthy();
    expect(classifyVma(vma('rw-p')).flags).toBe(0);
  });

  it('gives special mappings a header only', () => {
    expect(classifyVma(vma('r-xp', '[vdso]')).flags & VmaFlag.NoContents).toBeTruthy();
  });

  it('keys shared memory objects by device and inode, so a second mapping can refer to the first', () => {
    expect(classifyVma({ ...vma('rw-s', '/memfd:a (deleted)'), dev: '00:01', inode: 99 }).sharedKey).toBe(
      'shmem:00:01:99',
    );
    expect(classifyVma(vma('rw-s', '/data/db')).sharedKey).toBe('file:00:05:77');
    expect(classifyVma(vma('rw-p')).sharedKey).toBe('');
  });

  it.each([
    ['io', 'VM_IO'],
    ['pf', 'VM_PFNMAP'],
    ['ht', 'hugetlb'],
  ])('marks VmFlag %s unsupported with a reason', (flag, reason) => {
    const c = classifyVma(vma('rw-s', '/dev/mem', `rd wr ${flag}`));
    expect(c.kind).toBe(VmaKind.Unsupported);
    expect(c.flags & VmaFlag.NoContents).toBeTruthy();
    expect(c.reason).toContain(reason);
  });

  it('dumps MADV_DONTDUMP memory unless asked to respect it', () => {
    expect(classifyVma(vma('rw-p', '', 'rd wr dd')).kind).toBe(VmaKind.PrivateAnon);
    expect(classifyVma(vma('rw-p', '', 'rd wr dd'), { respectDontDump: true }).kind).toBe(
      VmaKind.Unsupported,
    );
  });

  it('reads PROT_NONE memory through /proc/PID/mem, and gives up only without VM_MAYREAD', () => {
    expect(classifyVma(vma('---p', '', 'mr mw me')).forceRead).toBe(true);
    expect(classifyVma(vma('---p', '', 'mw me')).kind).toBe(VmaKind.Unsupported);
    expect(classifyVma(vma('rw-p')).forceRead).toBe(false);
  });

  it('uses file runs only for private mappings of files a restore can open again', () => {
    expect(classifyVma(vma('r--p', '/usr/lib/libc.so.6')).fileRuns).toBe(true);
    expect(classifyVma(vma('r--p', '/tmp/gone (deleted)')).fileRuns).toBe(false);
    expect(classifyVma(vma('rw-p', '/memfd:x (deleted)')).fileRuns).toBe(false);
    expect(classifyVma(vma('rw-s', '/data/db')).fileRuns).toBe(false);
  });

  it('copies the pages of a file that its path no longer opens here (replaced, or another mount namespace)', () => {
    const asked: string[] = [];
    const reopens = (e: MapsEntry) => (asked.push(e.path), e.path !== '/usr/lib/replaced.so');
    expect(classifyVma(vma('r--p', '/usr/lib/libc.so.6'), { reopens }).fileRuns).toBe(true);
    expect(classifyVma(vma('r--p', '/usr/lib/replaced.so'), { reopens })).toMatchObject({ kind: VmaKind.PrivateFile, fileRuns: false });
    expect(classifyVma(vma('rw-p'), { reopens }).fileRuns).toBe(false);
    expect(asked).toEqual(['/usr/lib/libc.so.6', '/usr/lib/replaced.so']); // never for anonymous memory
  });
});
