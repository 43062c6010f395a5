import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import koffi from 'koffi';
import { DIRECT_ALIGN, alignedBuffer } from '@pagevault/format';
import { DirectOutput, openOutputFile } from './output-file';

const MiB = 1 << 20;

describe('output files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pv-output-file-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const path = () => join(dir, `f${n++}`);
  const pattern = (bytes: number) => randomBytes(bytes);

  it('aligns the buffers it stages pages in', () => {
    for (const bytes of [DIRECT_ALIGN, 3 * MiB + 5]) {
      const b = alignedBuffer(bytes);
      expect(b.length).toBe(bytes);
      expect(koffi.address(b) % BigInt(DIRECT_ALIGN)).toBe(0n);
    }
  });

  it('writes a durable file directly: aligned runs from staging, the rest buffered, holes left as holes', async () => {
    const p = path();
    const f = await openOutputFile(p, { fsync: true, flags: 'wx+' });
    expect(f.kind).toBe('direct'); // the test directory's file system has O_DIRECT (ext4, tmpfs ≥ 6.6)
    const big = pattern(10 * MiB); // more than all staging slots together: slots are reused while in flight
    const page = pattern(DIRECT_ALIGN);
    const header = pattern(100);
    const tail = pattern(DIRECT_ALIGN + 17); // not a multiple of the alignment: buffered
    await f.truncate(32 * MiB);
    await f.write(big, MiB);
    await f.write(page, 20 * MiB);
    await f.write(header, 0);
    await f.write(tail, 24 * MiB);
    // Read back while direct writes may still be in flight (the ELF writer reads its auxv back).
    const back = Buffer.alloc(MiB);
    expect(await f.read(back, 5 * MiB)).toBe(MiB);
    expect(back.equals(big.subarray(4 * MiB, 5 * MiB))).toBe(true);
    await f.finish();

    const want = Buffer.alloc(32 * MiB);
    big.copy(want, MiB);
    page.copy(want, 20 * MiB);
    header.copy(want, 0);
    tail.copy(want, 24 * MiB);
    expect(readFileSync(p).equals(want)).toBe(true);
    // Sparse: only what was written takes blocks (~10 MiB of 32).
    expect(statSync(p).blocks * 512).toBeLessThan(16 * MiB);
  });

  it('lets the caller reuse a buffer as soon as its write resolved', async () => {
    const p = path();
    const f = await openOutputFile(p, { fsync: true });
    const buf = pattern(6 * MiB);
    const want = Buffer.from(buf);
    await f.write(buf, 0);
    buf.fill(0xee); // the write may still be on its way to the disk: from the staging copy
    await f.write(buf.subarray(0, DIRECT_ALIGN), 6 * MiB);
    await f.finish();
    const got = readFileSync(p);
    expect(got.subarray(0, 6 * MiB).equals(want)).toBe(true);
    expect(got.subarray(6 * MiB).every((x) => x === 0xee)).toBe(true);
  });

  it('goes through the page cache without fsync, or when asked', async () => {
    const a = await openOutputFile(path(), { fsync: false });
    const b = await openOutputFile(path(), { fsync: true, direct: false });
    expect([a.kind, b.kind]).toEqual(['buffered', 'buffered']);
    await a.finish();
    await b.finish();
  });

  it('throws a direct write that failed in the background, typed and naming the file, from the next write and from finish', async () => {
    // /dev/full fails every write with ENOSPC, as a full disk does.
    const p = path();
    const fh = await open(p, 'wx');
    const full = await open('/dev/full', 'w');
    const f = new DirectOutput(fh, full, p);
    await f.write(pattern(MiB), 0); // staged: its failure comes later
    let caught: unknown;
    try {
      for (let i = 1; i < 16; i++) await f.write(pattern(MiB), i * MiB);
    } catch (e) {
      caught = e;
    }
    expect(caught).toMatchObject({ code: ErrorCodes.STORE_FULL, details: { path: p, errno: 'ENOSPC' } });
    expect((caught as Error).message).toContain(p);
    await expect(f.finish()).rejects.toMatchObject({ code: ErrorCodes.STORE_FULL });
    await f.abandon(); // as the writers do when finish() threw

    // Its staging buffers went back once: two outputs after it, written at the same time, stay apart.
    const [pa, pb] = [path(), path()];
    const [a, b] = [await openOutputFile(pa, { fsync: true }), await openOutputFile(pb, { fsync: true })];
    const [da, db] = [pattern(12 * MiB), pattern(12 * MiB)];
    await Promise.all([a.write(da, 0), b.write(db, 0)]);
    await Promise.all([a.finish(), b.finish()]);
    expect([readFileSync(pa).equals(da), readFileSync(pb).equals(db)]).toEqual([true, true]);
  });

  it('gives typed errors on the buffered path too: a full disk, an output that exists', async () => {
    const f = await openOutputFile('/dev/full', { fsync: false, flags: 'w' });
    await expect(f.write(pattern(4096), 0)).rejects.toMatchObject({ code: ErrorCodes.STORE_FULL, details: { path: '/dev/full' } });
    await f.abandon();
    const p = path();
    await (await openOutputFile(p, { fsync: true })).finish();
    await expect(openOutputFile(p, { fsync: true })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, details: { errno: 'EEXIST' } });
  });

  it('writes a small file with synchronous calls, with the same bytes, holes and typed errors; never one to fsync', async () => {
    const p = path();
    const f = await openOutputFile(p, { fsync: false, small: true, flags: 'wx+' }); // read back too
    expect(f.kind).toBe('small');
    await f.truncate(5 * 4096);
    const page = pattern(4096);
    expect(await f.write(page, 3 * 4096)).toBe(4096);
    const back = Buffer.alloc(4096);
    expect(await f.read(back, 3 * 4096)).toBe(4096);
    expect(back.equals(page)).toBe(true);
    await f.finish();
    await f.abandon(); // closed once: nothing more
    const bytes = readFileSync(p);
    expect(bytes.length).toBe(5 * 4096);
    expect(bytes.subarray(3 * 4096, 4 * 4096).equals(page)).toBe(true);
    expect(bytes.subarray(0, 3 * 4096).every((b) => b === 0)).toBe(true);
    // A durable file is not small: it goes the way that ends in an fsync.
    expect((await openOutputFile(path(), { fsync: true, direct: false, small: true })).kind).toBe('buffered');
    await expect(openOutputFile(p, { fsync: false, small: true })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, details: { errno: 'EEXIST' } });
    const full = await openOutputFile('/dev/full', { fsync: false, small: true, flags: 'w' });
    await expect(full.write(page, 0)).rejects.toMatchObject({ code: ErrorCodes.STORE_FULL, details: { path: '/dev/full' } });
    await full.abandon();
  });
});
