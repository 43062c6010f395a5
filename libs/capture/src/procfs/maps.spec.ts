import { describe, expect, it } from 'vitest';
import { parseMaps, parseMapsLine, parseSmaps } from './maps';

describe('parseMapsLine', () => {
  it('reads every field of a file mapping', () => {
    expect(
      parseMapsLine(
        '7f0c1a000000-7f0c1a021000 r-xp 00002000 fd:01 1835203                    /usr/lib/libc.so.6',
      ),
    ).toEqual({
      start: 0x7f0c1a000000,
      end: 0x7f0c1a021000,
      perms: 'r-xp',
      offset: 0x2000,
      dev: 'fd:01',
      inode: 1835203,
      path: '/usr/lib/libc.so.6',
      vmFlags: '',
    });
  });

  it('keeps spaces and the deleted marker in the path', () => {
    expect(parseMapsLine('10000-11000 rw-s 00000000 00:01 42   /memfd:my buf (deleted)')!.path).toBe(
      '/memfd:my buf (deleted)',
    );
  });

  it('gives anonymous memory an empty path', () => {
    const e = parseMapsLine('7ffd1000-7ffd3000 rw-p 00000000 00:00 0 ')!;
    expect(e.path).toBe('');
    expect(parseMapsLine('7ffd1000-7ffd3000 rw-p 00000000 00:00 0')!.path).toBe('');
  });

  it('parses [vsyscall] at the top of the address space exactly', () => {
    const e = parseMapsLine(
      'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]',
    )!;
    expect(e.end - e.start).toBe(4096);
    expect(BigInt(e.start)).toBe(0xffffffffff600000n);
  });

  it('is undefined for a line that is not a VMA', () => {
    expect(parseMapsLine('Rss:                   4 kB')).toBeUndefined();
  });
});

describe('parseMaps / parseSmaps', () => {
  it('parses a maps file and rejects garbage', () => {
    expect(
      parseMaps('1000-2000 r--p 00000000 00:00 0 \n3000-4000 rw-p 00000000 00:00 0 [heap]\n'),
    ).toHaveLength(2);
    expect(() => parseMaps('hello\n')).toThrow(SyntaxError);
  });

  it('attaches each VmFlags line to the VMA above it', () => {
    const text = [
      '55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]',
      'Size:                132 kB',
      'KernelPageSize:        4 kB',
      'THPeligible:    0',
      'VmFlags: rd wr mr mw me ac ',
      '7f0000000000-7f0000001000 rw-s 00000000 00:05 1234                       /dev/zero (deleted)',
      'Size:                  4 kB',
      'VmFlags: rd wr sh mr mw me ms ',
      '',
    ].join('\n');
    const v = parseSmaps(text);
    expect(v.map((e) => [e.path, e.vmFlags])).toEqual([
      ['[heap]', 'rd wr mr mw me ac'],
      ['/dev/zero (deleted)', 'rd wr sh mr mw me ms'],
    ]);
    // The last line without its newline, and blank lines, read the same.
    expect(parseSmaps(text.trimEnd() + '\n\n')).toEqual(v);
    expect(parseSmaps(text.replace(/\n$/, '').replace('VmFlags: rd wr sh mr mw me ms ', 'VmFlags: rd wr sh mr mw me ms'))).toEqual(v);
  });

  it('rejects an smaps line that is neither a VMA nor a field, and VmFlags before any VMA', () => {
    const head = '1000-2000 r--p 00000000 00:00 0\nSize: 4 kB\n';
    expect(parseSmaps(head)).toHaveLength(1);
    for (const bad of ['Size 4 kB', 'size: 4 kB', ' Size: 4 kB', '1000-2000 r--p']) {
      expect(() => parseSmaps(head + bad + '\n'), bad).toThrow(/not an smaps line/);
    }
    expect(() => parseSmaps('VmFlags: rd\n' + head)).toThrow(/VmFlags before any VMA/);
  });
});
