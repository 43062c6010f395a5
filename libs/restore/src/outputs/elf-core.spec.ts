import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { VmaFlag, VmaKind } from '@pagevault/format';
import { writeElfCore } from './elf-core';
import { ELF, encodeElfHeader, encodeExtnumSection, encodeProgramHeaders } from './elf-layout';
import { NT } from './elf-notes';
import { readElfCore, readSegment } from './elf-reader';
import { collect, pageContent, replay, syntheticFrames, type SyntheticSnapshot } from './testing/synthetic-frames';

const PS = 4096;
const work = mkdtempSync(join(tmpdir(), 'pv-elf-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const has = (tool: string): boolean => {
  try {
    execFileSync(tool, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const hasReadelf = has('readelf');
const hasLlvmReadelf = has('llvm-readelf');

const snap: SyntheticSnapshot = {
  pid: 777,
  cmdline: '/usr/local/bin/some-long-program-name\0--port\x008080\0',
  vmas: [
    { start: 0x555555554000, pages: 4, kind: VmaKind.PrivateFile, path: '/usr/local/bin/some-long-program-name', pgoff: 0, prot: 5, data: [0, 3] },
    { start: 0x555555558000, pages: 2, kind: VmaKind.PrivateFile, path: '/usr/local/bin/some-long-program-name', pgoff: 4 * PS, prot: 3, data: [1] },
    { start: 0x7f0000000000, pages: 1024, data: [0, 1, 2, 512, 1023], zero: [3, 4] },
    { start: 0x7ffff7fc0000, pages: 4, kind: VmaKind.Vvar, path: '[vvar]', prot: 1, flags: VmaFlag.NoContents },
  ],
};

describe('writeElfCore', () => {
  it('writes an x86_64 ET_CORE with a note segment and one PT_LOAD per VMA', async () => {
    const path = join(work, 'a.core');
    const stats = await writeElfCore(syntheticFrames(snap), path);
    const core = await readElfCore(path);
    expect(core.type).toBe(ELF.ET_CORE);
    expect(core.machine).toBe(ELF.EM_X86_64);
    expect(core.phdrs[0]!.type).toBe(ELF.PT_NOTE);
    const loads = core.phdrs.filter((p) => p.type === ELF.PT_LOAD);
    expect(loads.map((p) => [p.vaddr, p.memsz, p.filesz, p.flags])).toEqual([
      [0x555555554000, 4 * PS, 4 * PS, ELF.PF_R | ELF.PF_X],
      [0x555555558000, 2 * PS, 2 * PS, ELF.PF_R | ELF.PF_W],
      [0x7f0000000000, 1024 * PS, 1024 * PS, ELF.PF_R | ELF.PF_W],
      [0x7ffff7fc0000, 4 * PS, 0, ELF.PF_R],
    ]);
    for (const p of loads) expect(p.offset % PS).toBe(0);
    expect(stats.segments).toBe(4);
    expect(stats.pages).toEqual({ data: 8, zero: 2, file: 0, fileMissing: 0 });
    expect(statSync(path).size).toBe(stats.fileSize);
  });

  it('puts each data page at its address and leaves the rest as holes', async () => {
    const path = join(work, 'b.core');
    await writeElfCore(syntheticFrames(snap), path);
    const { phdrs } = await readElfCore(path);
    for (const a of [0x7f0000000000, 0x7f0000001000, 0x7f0000200000, 0x7f00003ff000, 0x555555559000]) {
      expect(await readSegment(path, phdrs, a, PS)).toEqual(pageContent(a));
    }
    expect((await readSegment(path, phdrs, 0x7f0000003000, PS))!.every((b) => b === 0)).toBe(true);
    expect(await readSegment(path, phdrs, 0x7ffff7fc0000, PS)).toBeUndefined();
    expect(statSync(path).blocks * 512).toBeLessThan(64 * PS); // 8 data pages of a 1030-page core
  });

  it('gives a second mapping of a shared object the pages dumped under the first, holes kept', async () => {
    const key = 'shmem:00:01:4242';
    const shm = { kind: VmaKind.SharedAnon, flags: VmaFlag.Shared, sharedKey: key, path: '/memfd:buf (deleted)', inode: 4242 };
    const s: SyntheticSnapshot = {
      vmas: [
        { start: 0x10000000, pages: 64, ...shm, data: [0, 1, 40, 63], zero: [2] },
        { start: 0x20000000, pages: 16, data: [3] },
        { start: 0x30000000, pages: 64, ...shm, flags: VmaFlag.Shared | VmaFlag.SharedElsewhere },
      ],
    };
    const path = join(work, 'shared-twice.core');
    const stats = await writeElfCore(syntheticFrames(s), path);
    const { phdrs } = await readElfCore(path);
    expect(phdrs.filter((p) => p.type === ELF.PT_LOAD).map((p) => p.filesz)).toEqual([64 * PS, 16 * PS, 64 * PS]);
    for (const k of [0, 1, 40, 63]) {
      expect(await readSegment(path, phdrs, 0x30000000 + k * PS, PS), `page ${k}`).toEqual(pageContent(0x10000000 + k * PS));
    }
    expect((await readSegment(path, phdrs, 0x30000000 + 2 * PS, PS))!.every((b) => b === 0)).toBe(true);
    expect(stats.sharedCopied).toBe(4);
    expect(statSync(path).blocks * 512).toBeLessThan(32 * PS); // 9 data pages: the copy's holes stay holes
  });

  it('records pid, name and arguments in NT_PRPSINFO, a zeroed NT_PRSTATUS, and the file mappings in NT_FILE', async () => {
    const path = join(work, 'c.core');
    await writeElfCore(syntheticFrames(snap), path);
    const { notes } = await readElfCore(path);
    expect(notes.map((n) => [n.name, n.type])).toEqual([['CORE', NT.PRSTATUS], ['CORE', NT.PRPSINFO], ['CORE', NT.FILE]]);
    const [status, psinfo, file] = notes.map((n) => n.desc);
    expect(status!.length).toBe(336);
    expect(status!.readInt32LE(32)).toBe(777);
    expect(psinfo!.length).toBe(136);
    expect(psinfo!.readInt32LE(24)).toBe(777);
    expect(psinfo!.toString('latin1', 40, 56).replace(/\0+$/, '')).toBe('some-long-progr');
    expect(psinfo!.toString('latin1', 56, 136).replace(/\0+$/, '')).toBe('/usr/local/bin/some-long-program-name --port 8080');
    expect(Number(file!.readBigUInt64LE(0))).toBe(2);
    expect(Number(file!.readBigUInt64LE(8))).toBe(PS);
    expect(Number(file!.readBigUInt64LE(16 + 24 + 16))).toBe(4); // second mapping's offset, in pages
  });

  it.runIf(hasReadelf)('is read by readelf: header, program headers and notes', async () => {
    const path = join(work, 'd.core');
    await writeElfCore(syntheticFrames(snap), path);
    const out = execFileSync('readelf', ['-W', '-h', '-l', '-n', path], { encoding: 'utf8' });
    expect(out).toMatch(/Type:\s+CORE \(Core file\)/);
    expect(out).toMatch(/Machine:\s+Advanced Micro Devices X86-64/);
    expect(out).toMatch(/Number of program headers:\s+5/);
    expect(out).toMatch(/NOTE\s+0x[0-9a-f]+ 0x0+ 0x0+ 0x[0-9a-f]+ 0x0+\s+0x4/);
    expect(out).toMatch(/LOAD\s+0x[0-9a-f]+ 0x00007f0000000000 0x0+ 0x0*400000 0x0*400000 RW\s+0x1000/);
    expect(out).toMatch(/LOAD\s+0x[0-9a-f]+ 0x00007ffff7fc0000 0x0+ 0x0+ 0x0*4000 R\s+0x1000/);
    expect(out).toMatch(/CORE\s+0x0+150\s+NT_PRSTATUS/);
    expect(out).toMatch(/CORE\s+0x0+88\s+NT_PRPSINFO/);
    expect(out).toMatch(/NT_FILE/);
    expect(out).not.toMatch(/warning|error/i);
  });

  // Debian's GNU readelf prints "Cannot decode 64-bit note in 32-bit build" for any NT_FILE (gcore's too).
  it.runIf(hasLlvmReadelf)('has an NT_FILE llvm-readelf decodes: page size, ranges, offsets in pages, names', async () => {
    const path = join(work, 'd2.core');
    await writeElfCore(syntheticFrames(snap), path);
    const out = execFileSync('llvm-readelf', ['--notes', path], { encoding: 'utf8' });
    expect(out).toMatch(/Page size: 4096/);
    expect(out).toMatch(/0x0000555555558000\s+0x000055555555a000\s+0x0+4\s+\/usr\/local\/bin\/some-long-program-name/);
  });

  // Built from the layout encoders directly: a 65535-VMA snapshot takes long to generate and says nothing more.
  it.runIf(hasReadelf)('uses extended numbering past 65534 program headers', async () => {
    const n = 70_001;
    const phdrs = Array.from({ length: n }, (_, i) => ({ type: ELF.PT_LOAD, flags: ELF.PF_R, offset: PS, vaddr: 0x10000000 + i * PS, filesz: 0, memsz: PS, align: PS }));
    const table = encodeProgramHeaders(phdrs);
    const path = join(work, 'e.core');
    writeFileSync(path, Buffer.concat([encodeElfHeader(64, n, 64 + table.length), table, encodeExtnumSection(n)]));
    expect((await readElfCore(path)).phdrs.length).toBe(n);
    const out = execFileSync('readelf', ['-W', '-h', path], { encoding: 'utf8' });
    expect(out).toMatch(/Number of program headers:\s+65535 \(70001\)/);
  });

  it('leaves no core, partial or not, when the stream fails', async () => {
    const frames = await collect(syntheticFrames(snap));
    const path = join(work, 'f.core');
    await expect(writeElfCore(replay(frames.slice(0, -2)), path)).rejects.toMatchObject({ code: ErrorCodes.FRAME_TRUNCATED });
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(work).filter((n) => n.startsWith('f.core'))).toEqual([]);
  });
});
