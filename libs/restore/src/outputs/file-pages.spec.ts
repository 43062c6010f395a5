import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { VmaKind, type VmaHeader } from '@pagevault/format';
import { FilePageReader } from './file-pages';

const PS = 4096;
const work = mkdtempSync(join(tmpdir(), 'pv-file-pages-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const vma = (path: string, pages: number): VmaHeader => ({
  index: 3, start: 0x7f0000000000, end: 0x7f0000000000 + pages * PS, prot: 5, flags: 0, pgoff: 0, kind: VmaKind.PrivateFile,
  dev: '00:00', inode: 0, path, vmFlags: '', reason: '', sharedKey: '',
});

describe('FilePageReader', () => {
  it('says how many of the pages taken from a file are lost from the first one it cannot give, over batches and runs', async () => {
    // 1,000 + 24 pages in two runs, read 256 at a time, from a file gone: all 1,024 from the first on.
    const v = vma(join(work, 'gone.so'), 2048);
    const runs = [{ start: v.start, pages: 1000 }, { start: v.start + 1024 * PS, pages: 24 }];
    const reader = new FilePageReader({ pageSize: PS, host: 'elsewhere' });
    await expect(reader.fill(v, runs, async () => undefined)).rejects.toMatchObject({
      code: ErrorCodes.FILE_UNAVAILABLE, message: expect.stringContaining(`its page at 0x7f0000000000 (and 1023 more taken from the file after it)`),
    });
    // A file of 300 pages: the first 256 come, the rest of the first batch and everything after are lost.
    const short = join(work, 'short.so');
    writeFileSync(short, Buffer.alloc(300 * PS, 1));
    const got: number[] = [];
    const r2 = new FilePageReader({ pageSize: PS, host: 'elsewhere' });
    await expect(r2.fill(vma(short, 2048), runs, async (_a, _d, n) => void got.push(n))).rejects.toMatchObject({
      message: expect.stringContaining(`its page at 0x${(v.start + 300 * PS).toString(16)} (and ${1024 - 300 - 1} more taken from the file after it)`),
    });
    expect(got).toEqual([256]);
  });
});
