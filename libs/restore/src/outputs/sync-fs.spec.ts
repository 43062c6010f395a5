import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '@pagevault/errors';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncFiles } from './sync-fs';

describe('syncFiles', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-syncfs-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('syncs many files with one syncfs of their file system, opening none of them', async () => {
    const names = Array.from({ length: 64 }, (_, i) => `img-${i}`);
    await Promise.all(names.slice(0, 10).map((n) => writeFile(join(dir, n), 'x')));
    // 54 of the names are not there: one fsync each would fail on the first of them.
    await expect(syncFiles(dir, names)).resolves.toBeUndefined();
  });

  it('fsyncs a few files one by one, naming one it cannot sync', async () => {
    const names = Array.from({ length: 5 }, (_, i) => `few-${i}`);
    for (const n of names) await writeFile(join(dir, n), 'y');
    await expect(syncFiles(dir, names)).resolves.toBeUndefined();
    await expect(syncFiles(dir, [...names, 'gone'])).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining(join(dir, 'gone')) });
    await expect(syncFiles(dir, [])).resolves.toBeUndefined();
  });

  it('names the directory when it is gone', async () => {
    await expect(syncFiles(join(dir, 'nope'), Array.from({ length: 64 }, (_, i) => `x${i}`))).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
  });
});
