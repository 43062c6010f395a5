import { describe, expect, it } from 'vitest';
import { coverage, parseMaps, sameBacking } from './proc-maps';

const maps = parseMaps(
  [
    '00400000-00401000 r-xp 00000000 08:01 42 /usr/bin/target',
    '00401000-00403000 rw-p 00001000 08:01 42 /usr/bin/target',
    '10000000-10004000 rw-p 00000000 00:00 0 ',
    '10004000-10008000 rw-p 00000000 00:00 0',
    '7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0                          [stack]',
    '',
  ].join('\n'),
);

describe('target maps', () => {
  it('parses /proc/PID/maps lines', () => {
    expect(maps).toHaveLength(5);
    expect(maps[0]).toEqual({ start: 0x400000, end: 0x401000, perms: 'r-xp', offset: 0, dev: '08:01', inode: 42, path: '/usr/bin/target' });
    expect(maps[2]).toMatchObject({ dev: '00:00', inode: 0, path: '' });
    expect(maps[1]!.offset).toBe(0x1000);
    expect(maps[4]!.path).toBe('[stack]');
  });

  it('covers a range split over adjacent mappings', () => {
    expect(coverage(maps, 0x10000000, 0x10008000)).toEqual({ readWrite: true });
  });

  it('names the first uncovered part of a range', () => {
    expect(coverage(maps, 0x10006000, 0x1000a000)).toEqual({ missing: { start: 0x10008000, end: 0x1000a000 }, readWrite: true });
    expect(coverage(maps, 0x403000, 0x405000).missing).toEqual({ start: 0x403000, end: 0x405000 });
    expect(coverage(maps, 0x3ff000, 0x401000).missing).toEqual({ start: 0x3ff000, end: 0x400000 });
  });

  it('says when a covering mapping is not read-write', () => {
    expect(coverage(maps, 0x400000, 0x403000)).toEqual({ readWrite: false });
  });

  it('says whether the target maps a range with the same backing: the file at the same offset, or anonymous memory', () => {
    expect(sameBacking(maps, 0x401000, 0x403000, '/usr/bin/target', 0x1000)).toBe(true);
    expect(sameBacking(maps, 0x402000, 0x403000, '/usr/bin/target', 0x2000)).toBe(true);
    expect(sameBacking(maps, 0x401000, 0x403000, '/usr/bin/target', 0)).toBe(false); // another offset
    expect(sameBacking(maps, 0x401000, 0x403000, '/usr/bin/other', 0x1000)).toBe(false);
    expect(sameBacking(maps, 0x10000000, 0x10008000, '', 0)).toBe(true);
    expect(sameBacking(maps, 0x7ffd00000000, 0x7ffd00021000, '', 0)).toBe(true); // [stack]
    expect(sameBacking(maps, 0x401000, 0x403000, '', 0)).toBe(false); // a file where the snapshot had anonymous memory
    // On the snapshot's host: the very file too, not another one at the same path (replaced since).
    expect(sameBacking(maps, 0x401000, 0x403000, '/usr/bin/target', 0x1000, { dev: '08:01', inode: 42 })).toBe(true);
    expect(sameBacking(maps, 0x401000, 0x403000, '/usr/bin/target', 0x1000, { dev: '08:01', inode: 43 })).toBe(false);
    expect(sameBacking(maps, 0x401000, 0x403000, '/usr/bin/target', 0x1000, { dev: '08:02', inode: 42 })).toBe(false);
    expect(sameBacking(parseMaps('10000000-10004000 rw-s 00000000 00:01 7 /dev/zero (deleted)\n'), 0x10000000, 0x10004000, '', 0)).toBe(false); // shared
  });
});
