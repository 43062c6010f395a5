import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { manifestBytes, parseManifest, type Manifest } from './manifest';

const manifest = (): Manifest => ({
  format: 'pagevault.manifest.v1', snapshotId: 'ab'.repeat(16), tenant: 't', host: 'h', pid: 42, cmdline: 'target --x', pageSize: 4096,
  startTimeMs: 1, committedAtMs: 2, mode: 'full', consistency: 'frozen',
  vmas: [{ index: 0, start: 0xffffffffff600000, end: 0xffffffffff601000, prot: 4, flags: 2, kind: 9, pgoff: 0, dev: 0, inode: 0, path: '[vsyscall]', pages: { data: 0, zero: 0, file: 0 } } as unknown as Manifest['vmas'][number]],
  counts: { vmas: 1, dataPages: 0, zeroPages: 0, filePages: 0, parentPages: 0, newPages: 0, newBytes: 0, mapNodesWritten: 0, mapBytesWritten: 0 },
  streamDigest: '00',
});

describe('manifest checksum', () => {
  it('reads back what it wrote, checksum last; rewriting a read manifest gives the same bytes', () => {
    const b = manifestBytes(manifest());
    const m = parseManifest(b, 'k');
    expect(Object.keys(m).at(-1)).toBe('checksum');
    expect(m.vmas[0]!.start).toBe(0xffffffffff600000);
    expect(manifestBytes(m).equals(b)).toBe(true);
  });

  it('refuses a manifest damaged into other valid JSON: a digit, a letter', () => {
    const text = manifestBytes(manifest()).toString();
    for (const damaged of [text.replace('"prot": 4', '"prot": 6'), text.replace('target --x', 'target --y')]) {
      expect(damaged).not.toBe(text);
      expect(() => parseManifest(Buffer.from(damaged), 'k')).toThrow(expect.objectContaining({ code: ErrorCodes.OBJECT_CORRUPT, message: expect.stringContaining('checksum does not match') }));
    }
  });

  it('reads a manifest written before checksums, unchecked', () => {
    const old = Buffer.from(JSON.stringify(manifest()));
    expect(parseManifest(old, 'k').cmdline).toBe('target --x');
  });
});
