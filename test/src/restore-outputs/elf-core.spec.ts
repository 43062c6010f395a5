import { execFileSync } from 'node:child_process';
import { mkdtempSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FrameType, VmaKind, type Frame } from '@pagevault/format';
import { ELF, readElfCore, writeElfCore, type ElfCoreInfo, type ElfCoreStats } from '@pagevault/restore';
import { captureFrames, replay } from './helpers/capture-frames';
import { buildMemtarget, readProcessMemory, startMemtarget, type Running, type SourceInfo, stopAndWait } from './helpers/memtarget';
import { compareCores } from './helpers/core-compare';

const work = mkdtempSync(join(tmpdir(), 'pv-elf-it-'));
let src: Running<SourceInfo>;
let frames: Frame[];
let ours: string;
let holes: string;
let theirs: string;
let stats: ElfCoreStats;

/** Runs gdb in batch mode on the memtarget binary and a core; killed if it takes over 60 s. */
function gdb(core: string, commands: string[]): string {
  const args = ['-batch', '-nx', ...commands.flatMap((c) => ['-ex', c]), buildMemtarget(), core];
  return execFileSync('gdb', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, killSignal: 'SIGKILL' });
}

beforeAll(async () => {
  buildMemtarget();
  src = await startMemtarget<SourceInfo>(['source']);
  const pid = src.info.pid;
  await stopAndWait(pid);
  frames = await captureFrames(pid);
  ours = join(work, 'ours.core');
  stats = await writeElfCore(replay(frames), ours);
  holes = join(work, 'holes.core');
  await writeElfCore(replay(frames), holes, { fillUntouchedFromFile: false });
  execFileSync('gcore', ['-o', join(work, 'gcore'), String(pid)], { stdio: 'ignore' });
  theirs = join(work, `gcore.${pid}`);
});

afterAll(async () => {
  await src?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('ELF core of a real, frozen process', () => {
  it('opens in gdb, which prints every marker string at its address', () => {
    const out = gdb(ours, src.info.markers.map((m) => `x/s ${m.addr}`));
    for (const m of src.info.markers) {
      expect(out, `${m.name} marker at ${m.addr}`).toMatch(new RegExp(`^${m.addr}[^:\\n]*:\\s+"${m.text}"$`, 'm'));
    }
  });

  it('gives gdb symbols and shared libraries: untouched file pages are filled by default (rebuilt NT_AUXV)', () => {
    const data = src.info.markers.find((m) => m.name === 'data')!;
    const out = gdb(ours, ['p data_marker', 'p &data_marker', 'info sharedlibrary']);
    expect(out).toMatch(new RegExp(`^\\$1 = "${data.text}\\\\000`, 'm'));
    expect(out).toMatch(new RegExp(`^\\$2 = \\(char \\(\\*\\)\\[64\\]\\) ${data.addr} <data_marker>`, 'm'));
    expect(out).toMatch(/Yes\s+\S*libc\.so\.6/);
  });

  // The pages a process never faulted in are holes, but by default file-backed ones come from the file,
  // and then every readable page equals the process's; with fillUntouchedFromFile: false they read as zeros.
  it('holds what the frozen process holds, page for page, untouched file pages filled by default', async () => {
    const differing = async (path: string) => {
      const core = await readElfCore(path);
      const fd = openSync(path, 'r');
      const ps = src.info.pageSize;
      const bad: string[] = [];
      let compared = 0;
      try {
        for (const p of core.phdrs.filter((x) => x.type === ELF.PT_LOAD && x.filesz > 0 && x.flags & ELF.PF_R)) {
          const mine = Buffer.alloc(p.filesz);
          readSync(fd, mine, 0, p.filesz, p.offset);
          const live = readProcessMemory(src.info.pid, p.vaddr, p.filesz);
          for (let o = 0; o < p.filesz; o += ps) {
            if (mine.compare(live, o, o + ps, o, o + ps) !== 0) bad.push(`0x${(p.vaddr + o).toString(16)}`);
          }
          compared += p.filesz / ps;
        }
      } finally {
        closeSync(fd);
      }
      return { bad, compared };
    };
    const filled = await differing(ours);
    expect(filled.bad).toEqual([]);
    expect(filled.compared).toBeGreaterThan(100);
    expect((await differing(holes)).bad.length).toBeGreaterThan(0);
    expect(stats.pages.data).toBeGreaterThan(50);
  });

  it('has the same bytes as gcore wherever both cores hold the memory', async () => {
    const [a, b]: ElfCoreInfo[] = await Promise.all([readElfCore(ours), readElfCore(theirs)]);
    const names = new Map<number, string>();
    for (const f of frames) if (f.body.type === FrameType.VmaBegin) names.set(f.body.vma.start, f.body.vma.path || VmaKind[f.body.vma.kind]!);
    const cmp = compareCores(ours, a, theirs, b, src.info.pageSize, names);
    expect(cmp.mismatches).toEqual([]);
    expect(cmp.bothPages).toBeGreaterThan(50);
    // Only gcore holds the VMAs capture does not read ([vdso], [vsyscall]: NoContents, p_filesz 0 here).
    expect(cmp.onlyTheirs.length).toBeGreaterThan(0);
    for (const r of cmp.onlyTheirs) expect(r.name).toMatch(/^\[(vdso|vsyscall|vvar|vvar_vclock)\]$/);
    // Only ours holds file-backed text and read-only data (p_filesz = length, pages the process touched
    // filled from the file, the rest holes); gcore dumps only the first page of such mappings.
    for (const r of cmp.onlyOurs) expect(r.name).toMatch(/^\//);
  });
});
