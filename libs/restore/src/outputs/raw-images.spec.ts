import { mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, existsSync, mkdirSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { mapsDev } from '@pagevault/capture';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { VmaFlag, VmaKind } from '@pagevault/format';
import { writeRawImages } from './raw-images';
import type { RawLayout } from './raw-layout';
import { collect, pageContent, replay, syntheticFrames, type SyntheticSnapshot } from './testing/synthetic-frames';

const PS = 4096;
const work = mkdtempSync(join(tmpdir(), 'pv-raw-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// A mapped file whose page k is filled with byte k + 1; 3.5 pages long.
const mapped = join(work, 'lib.so');
writeFileSync(mapped, Buffer.concat([0, 1, 2, 3].map((k) => Buffer.alloc(PS, k + 1))).subarray(0, 3.5 * PS));

const snap: SyntheticSnapshot = {
  vmas: [
    { start: 0x400000, pages: 6, kind: VmaKind.PrivateFile, path: mapped, pgoff: PS, prot: 5, file: [0, 1, 2, 3], data: [4] },
    { start: 0x10000000, pages: 300, data: [0, 1, 2, 100, 299], zero: [3, 4, 200] },
    { start: 0x7fff0000, pages: 2, kind: VmaKind.Vvar, path: '[vvar]', flags: VmaFlag.NoContents, prot: 1 },
    { start: 0x7fff2000, pages: 4, kind: VmaKind.PrivateFile, path: '/nonexistent/lib.so', file: [0, 1], prot: 1 },
  ],
};

describe('writeRawImages', () => {
  it('writes one sparse image per VMA with contents, data at its offset and holes elsewhere', async () => {
    const dir = join(work, 'out1');
    const stats = await writeRawImages(syntheticFrames(snap), dir, { onMissingFile: 'allow' });
    const files = readdirSync(dir).sort();
    expect(files).toEqual(['layout.json', 'vma-0-400000-406000.img', 'vma-1-10000000-1012c000.img', 'vma-3-7fff2000-7fff6000.img']);
    const anon = join(dir, 'vma-1-10000000-1012c000.img');
    const st = statSync(anon);
    expect(st.size).toBe(300 * PS);
    expect(st.blocks * 512).toBeLessThanOrEqual(16 * PS); // 5 data pages; the rest never written
    const img = readFileSync(anon);
    for (const k of [0, 1, 2, 100, 299]) expect(img.subarray(k * PS, (k + 1) * PS)).toEqual(pageContent(0x10000000 + k * PS));
    for (const k of [3, 4, 50, 200]) expect(img.subarray(k * PS, (k + 1) * PS).every((b) => b === 0)).toBe(true);
    expect(stats.pages).toEqual({ data: 6, zero: 3, file: 3, fileMissing: 3 });
    expect(stats.missingFiles).toEqual([
      { path: mapped, reason: expect.stringMatching(/^is 14336 bytes, shorter than/), pages: 1 },
      { path: '/nonexistent/lib.so', reason: 'no longer exists', pages: 2 },
    ]);
    expect(stats.bytesWritten).toBe(9 * PS);
    expect(stats.images).toBe(3);
  });

  it('fills file pages from the file at pgoff + (addr - start), zero-padding the page the end of file cuts', async () => {
    const dir = join(work, 'out2');
    await writeRawImages(syntheticFrames(snap), dir, { onMissingFile: 'allow' });
    const img = readFileSync(join(dir, 'vma-0-400000-406000.img'));
    expect(img.length).toBe(6 * PS);
    expect(img.subarray(0, PS).every((b) => b === 2)).toBe(true); // pgoff one page in: file page 1
    expect(img.subarray(PS, 2 * PS).every((b) => b === 3)).toBe(true);
    expect(img.subarray(2 * PS, 2.5 * PS).every((b) => b === 4)).toBe(true);
    expect(img.subarray(2.5 * PS, 3 * PS).every((b) => b === 0)).toBe(true);
    expect(img.subarray(3 * PS, 4 * PS).every((b) => b === 0)).toBe(true); // past the end of the file: missing
    expect(img.subarray(4 * PS, 5 * PS)).toEqual(pageContent(0x400000 + 4 * PS));
  });

  it('describes the snapshot and every VMA in layout.json', async () => {
    const dir = join(work, 'out3');
    await writeRawImages(syntheticFrames(snap), dir, { onMissingFile: 'allow' });
    const layout = JSON.parse(readFileSync(join(dir, 'layout.json'), 'utf8')) as RawLayout;
    expect(layout.snapshot).toMatchObject({ pid: 4242, pageSize: PS, argv: ['/usr/bin/synthetic', '--flag'], mode: 'Full', consistency: 'Frozen' });
    expect(layout.snapshot.end).toMatchObject({ vmaCount: 4, dataPages: 6, zeroPages: 3, filePages: 6 });
    expect(layout.vmas.map((v) => [v.index, v.start, v.end, v.kind, v.perms, v.image])).toEqual([
      [0, '0x400000', '0x406000', 'PrivateFile', 'r-xp', 'vma-0-400000-406000.img'],
      [1, '0x10000000', '0x1012c000', 'PrivateAnon', 'rw-p', 'vma-1-10000000-1012c000.img'],
      [2, '0x7fff0000', '0x7fff2000', 'Vvar', 'r--p', null],
      [3, '0x7fff2000', '0x7fff6000', 'PrivateFile', 'r--p', 'vma-3-7fff2000-7fff6000.img'],
    ]);
    expect(layout.vmas[0]!.pages).toEqual({ data: 1, zero: 0, file: 3, fileMissing: 1, untouched: 1 });
    expect(layout.vmas[1]!.pages).toEqual({ data: 5, zero: 3, file: 0, fileMissing: 0, untouched: 292 });
    expect(layout.vmas[3]!.pages).toEqual({ data: 0, zero: 0, file: 0, fileMissing: 2, untouched: 2 });
  });

  it('fails naming the file, leaving no output, when a file page cannot be read (by default)', async () => {
    const dir = join(work, 'out-missing');
    const gone = { vmas: [{ start: 0x1000, pages: 2, kind: VmaKind.PrivateFile, path: '/nonexistent/lib.so', file: [1] }] };
    await expect(writeRawImages(syntheticFrames(gone), dir)).rejects.toMatchObject({
      code: ErrorCodes.FILE_UNAVAILABLE,
      message: expect.stringMatching(/^VMA 0 0x1000-0x3000 maps \/nonexistent\/lib.so, which no longer exists: its page at 0x2000/),
      details: { path: '/nonexistent/lib.so', vma: 0, address: '0x2000' },
    });
    const short = { vmas: [{ start: 0x1000, pages: 6, kind: VmaKind.PrivateFile, path: mapped, file: [3, 4] }] };
    await expect(writeRawImages(syntheticFrames(short), dir)).rejects.toMatchObject({ code: ErrorCodes.FILE_UNAVAILABLE, details: { address: '0x5000' } });
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(work).filter((n) => n.includes('partial'))).toEqual([]);
  });

  it("on the snapshot's host, refuses a file replaced since (another device or inode) and fills the same one", async () => {
    const lib = join(work, 'replaced.so');
    writeFileSync(lib, Buffer.alloc(2 * PS, 0x31));
    const st = statSync(lib, { bigint: true });
    const vma = { start: 0x1000, pages: 2, kind: VmaKind.PrivateFile, path: lib, dev: mapsDev(st.dev), inode: Number(st.ino), file: [0, 1] };
    const same = await writeRawImages(syntheticFrames({ host: hostname(), vmas: [vma] }), join(work, 'out-same'));
    expect(same.pages.file).toBe(2);
    // A package upgrade: the new file is written beside and renamed over the old one (a new inode).
    writeFileSync(lib + '.new', Buffer.alloc(2 * PS, 0x32));
    renameSync(lib + '.new', lib);
    await expect(writeRawImages(syntheticFrames({ host: hostname(), vmas: [vma] }), join(work, 'out-replaced'))).rejects.toMatchObject({
      code: ErrorCodes.FILE_UNAVAILABLE,
      message: expect.stringContaining(`is another file than the one mapped (device ${mapsDev(st.dev)} inode ${st.ino}`),
    });
    expect(existsSync(join(work, 'out-replaced'))).toBe(false);
    // Allowed, its pages are left out (zeros), never the new file's bytes.
    const allowed = await writeRawImages(syntheticFrames({ host: hostname(), vmas: [vma] }), join(work, 'out-replaced'), { onMissingFile: 'allow' });
    expect(allowed.pages).toMatchObject({ file: 0, fileMissing: 2 });
    expect(readFileSync(join(work, 'out-replaced', 'vma-0-1000-3000.img')).every((b) => b === 0)).toBe(true);
    // On another host inodes say nothing: the file at the path is read.
    await writeRawImages(syntheticFrames({ host: 'other-host', vmas: [vma] }), join(work, 'out-elsewhere'));
    expect(readFileSync(join(work, 'out-elsewhere', 'vma-0-1000-3000.img')).every((b) => b === 0x32)).toBe(true);
  });

  it('reads mapped files under fileRoot when one is given', async () => {
    const root = join(work, 'root');
    mkdirSync(join(root, 'opt'), { recursive: true });
    writeFileSync(join(root, 'opt', 'x.so'), Buffer.alloc(2 * PS, 7));
    const dir = join(work, 'out4');
    const s = await writeRawImages(syntheticFrames({ vmas: [{ start: 0x1000, pages: 2, kind: VmaKind.PrivateFile, path: '/opt/x.so', file: [0, 1] }] }), dir, { fileRoot: root });
    expect(s.pages.file).toBe(2);
    expect(readFileSync(join(dir, 'vma-0-1000-3000.img')).every((b) => b === 7)).toBe(true);
  });

  it('fills untouched pages of file-backed VMAs from the file only when asked', async () => {
    const file = join(work, 'four.so');
    writeFileSync(file, Buffer.concat([0, 1, 2, 3].map((k) => Buffer.alloc(PS, 0x10 + k))));
    const s: SyntheticSnapshot = { vmas: [{ start: 0x1000, pages: 6, kind: VmaKind.PrivateFile, path: file, file: [0], data: [1] }] };
    const holes = await writeRawImages(syntheticFrames(s), join(work, 'out7'));
    const filled = await writeRawImages(syntheticFrames(s), join(work, 'out8'), { fillUntouchedFromFile: true });
    expect(holes.pages.file).toBe(1);
    expect(filled.pages.file).toBe(3); // pages 2 and 3; 4 and 5 lie past the end of the file
    const a = readFileSync(join(work, 'out7', 'vma-0-1000-7000.img'));
    const b = readFileSync(join(work, 'out8', 'vma-0-1000-7000.img'));
    expect(a.subarray(2 * PS, 4 * PS).every((x) => x === 0)).toBe(true);
    expect(b.subarray(2 * PS, 3 * PS).every((x) => x === 0x12)).toBe(true);
    expect(b.subarray(3 * PS, 4 * PS).every((x) => x === 0x13)).toBe(true);
    expect(b.subarray(PS, 2 * PS)).toEqual(pageContent(0x2000));
    expect(b.subarray(4 * PS).every((x) => x === 0)).toBe(true);
    const layout = JSON.parse(readFileSync(join(work, 'out8', 'layout.json'), 'utf8')) as RawLayout;
    expect(layout.vmas[0]!.pages).toEqual({ data: 1, zero: 0, file: 3, fileMissing: 0, untouched: 2 });
  });

  it('leaves nothing behind when the stream fails part-way', async () => {
    const frames = await collect(syntheticFrames(snap));
    const dir = join(work, 'out5');
    await expect(writeRawImages(replay(frames.slice(0, -1)), dir, { onMissingFile: 'allow' })).rejects.toMatchObject({ code: ErrorCodes.FRAME_TRUNCATED });
    expect(existsSync(dir)).toBe(false);
    expect(readdirSync(work).filter((n) => n.includes('partial'))).toEqual([]);
  });

  it('never writes into a non-empty directory', async () => {
    const dir = join(work, 'out6');
    mkdirSync(dir);
    writeFileSync(join(dir, 'keep'), 'x');
    await expect(writeRawImages(syntheticFrames(snap), dir)).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    expect(readdirSync(dir)).toEqual(['keep']);
  });
});
