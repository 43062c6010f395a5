import { mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MappedFileCheck, isMappedFile, mapsDev } from './file-identity';
import { parseMapsLine } from './maps';

describe('mapsDev', () => {
  it("prints glibc's dev_t as /proc/PID/maps does: major:minor in hex, two digits at least", () => {
    expect(mapsDev(0xfe00n)).toBe('fe:00'); // 254:0
    expect(mapsDev(0x10301n)).toBe('103:01'); // 259:1 (an NVMe partition)
    expect(mapsDev((0x12cn & ~0xffn) << 12n | (0x12cn & 0xffn))).toBe('00:12c'); // 0:300
    expect(mapsDev(((0x1234n & ~0xfffn) << 32n) | ((0x1234n & 0xfffn) << 8n))).toBe('1234:00'); // a major over 12 bits
    expect(mapsDev(((0x123456n & ~0xffn) << 12n) | 0x56n)).toBe('00:123456'); // a minor over 20 bits
  });

  it("names this process's own libraries as its maps do", () => {
    const lines = readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => /\s\/\S+\.so[.\d]*$/.test(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      const e = parseMapsLine(l)!;
      expect(isMappedFile(statSync(e.path, { bigint: true }), e.dev, e.inode), l).toBe(true);
    }
  });
});

describe('MappedFileCheck', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pv-file-identity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('says no for a file replaced by a rename, a gone file and a directory, and stats each once', () => {
    const f = join(dir, 'lib.so');
    writeFileSync(f, 'one');
    const st = statSync(f, { bigint: true });
    const dev = mapsDev(st.dev);
    const stats: string[] = [];
    const check = new MappedFileCheck((p) => {
      stats.push(p);
      try {
        return statSync(p, { bigint: true });
      } catch {
        return undefined;
      }
    });
    expect(check.isHere(f, dev, Number(st.ino))).toBe(true);
    expect(check.isHere(f, dev, Number(st.ino))).toBe(true);
    expect(stats).toEqual([f]);
    writeFileSync(f + '.new', 'two');
    renameSync(f + '.new', f);
    expect(new MappedFileCheck().isHere(f, dev, Number(st.ino))).toBe(false);
    expect(new MappedFileCheck().isHere(join(dir, 'gone'), dev, 1)).toBe(false);
    const d: BigIntStats = statSync(dir, { bigint: true });
    expect(new MappedFileCheck().isHere(dir, mapsDev(d.dev), Number(d.ino))).toBe(false);
  });
});
