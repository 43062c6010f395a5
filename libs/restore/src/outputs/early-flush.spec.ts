import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { flushEarly, settle, wrote } from './early-flush';
import { writeFully } from './sparse-writes';

describe('early flush', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pv-flush-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('flushes in the background every 64 MiB written, one flush at a time', async () => {
    let calls = 0;
    let release: () => void = () => undefined;
    const fh = { datasync: () => (calls++, new Promise<void>((r) => (release = r))) } as unknown as FileHandle;
    flushEarly(fh);
    wrote(fh, 63 << 20);
    expect(calls).toBe(0);
    wrote(fh, 2 << 20); // past 64 MiB: one flush starts
    wrote(fh, 200 << 20); // one is in flight: no second one
    expect(calls).toBe(1);
    release();
    await settle(fh);
  });

  it('keeps the error of a background flush for settle, so a failed writeback is never lost', async () => {
    const fh = { datasync: () => Promise.reject(Object.assign(new Error('EIO: i/o error'), { code: 'EIO' })) } as unknown as FileHandle;
    flushEarly(fh);
    wrote(fh, 65 << 20);
    await expect(settle(fh)).rejects.toMatchObject({ code: 'EIO' });
  });

  it('leaves the bytes of a real file as written', async () => {
    const path = join(dir, 'f');
    const fh = await open(path, 'wx');
    flushEarly(fh);
    const chunk = Buffer.alloc(8 << 20, 7);
    for (let i = 0; i < 10; i++) await writeFully(fh, chunk, i * chunk.length); // 80 MiB: one flush on the way
    await settle(fh);
    await fh.sync();
    await fh.close();
    const b = readFileSync(path);
    expect(b.length).toBe(80 << 20);
    expect(b.every((x) => x === 7)).toBe(true);
  });
});
