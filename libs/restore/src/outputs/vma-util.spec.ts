import { describe, expect, it } from 'vitest';
import { VmaFlag } from '@pagevault/format';
import { perms, vmaNote } from './vma-util';

describe('vma-util', () => {
  it('says why a VMA carries no pages', () => {
    expect(vmaNote({ flags: VmaFlag.NoContents, reason: 'hugetlb', sharedKey: '' })).toBe('not read: hugetlb');
    expect(vmaNote({ flags: VmaFlag.Shared | VmaFlag.SharedElsewhere, reason: '', sharedKey: 'shmem:00:01:7' })).toBe('shared: dumped under an earlier VMA (shmem:00:01:7)');
    expect(vmaNote({ flags: VmaFlag.NoContents, reason: '', sharedKey: '' })).toMatch(/kernel's/);
    expect(vmaNote({ flags: 0, reason: '', sharedKey: '' })).toBe('');
  });

  it('prints permissions as /proc/PID/maps does', () => {
    expect(perms({ prot: 5, flags: 0 })).toBe('r-xp');
    expect(perms({ prot: 3, flags: VmaFlag.Shared })).toBe('rw-s');
  });
});
