import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { FrameType, VmaFlag } from '@pagevault/format';
import { writeElfCore } from '@pagevault/restore';
import { captureFrames, replay } from './helpers/capture-frames';

// A real process mapping one memfd twice, a marker written through the first mapping: the stream dumps
// the object once (the second VMA is "shared elsewhere"), and gdb must still read the marker at both
// addresses of the core, as it does in gcore's.

const work = mkdtempSync(join(tmpdir(), 'pv-elf-shared-'));
let p: ChildProcess | undefined;
afterAll(() => {
  p?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

const TARGET = `
import mmap, os, sys, ctypes
fd = os.memfd_create('pv-twice')
os.ftruncate(fd, 16 * 4096)
a = mmap.mmap(fd, 16 * 4096, flags=mmap.MAP_SHARED)
b = mmap.mmap(fd, 16 * 4096, flags=mmap.MAP_SHARED)
a[5 * 4096:5 * 4096 + 24] = b'pagevault-shared-marker\\0'
addr = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))
sys.stdout.write('%x %x\\n' % (addr(a), addr(b))); sys.stdout.flush()
sys.stdin.read()
`;

/** The target's stdout line: the two mappings' addresses in hex. */
async function start(script: string, ...args: string[]): Promise<[number, number]> {
  p = spawn('python3', ['-c', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((res, rej) => {
    createInterface({ input: p!.stdout! }).once('line', res);
    p!.once('exit', (c) => rej(new Error(`target exited ${c}`)));
  });
  return line.split(' ').map((h) => parseInt(h, 16)) as [number, number];
}

const gdbString = (core: string, addr: number) =>
  execFileSync('gdb', ['-batch', '-nx', '-ex', `x/s 0x${addr.toString(16)}`, '-c', core], { encoding: 'utf8', timeout: 60_000 });

// A regular file mapped MAP_SHARED twice over the same range, one page written through each mapping:
// each page is in one mapping's page table only, and both are the same memory.
const FILE_TWICE = `
import mmap, os, sys, ctypes
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 16 * 4096)
a = mmap.mmap(fd, 16 * 4096, flags=mmap.MAP_SHARED)
b = mmap.mmap(fd, 16 * 4096, flags=mmap.MAP_SHARED)
a[0:16] = b'written-via-a-0\\0'
b[3 * 4096:3 * 4096 + 16] = b'written-via-b-3\\0'
addr = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))
sys.stdout.write('%x %x\\n' % (addr(a), addr(b))); sys.stdout.flush()
sys.stdin.read()
`;

describe('an ELF core of a process mapping one shared object twice', () => {
  it('holds a shared file mapped twice whole: pages touched through either mapping, at both addresses', async () => {
    const [a, b] = await start(FILE_TWICE, join(work, 'shared-file'));
    const frames = await captureFrames(p!.pid!);
    const core = join(work, 'file-twice.core');
    await writeElfCore(replay(frames), core);
    p!.kill('SIGKILL');
    for (const at of [a, b]) {
      expect(gdbString(core, at), `page 0 at 0x${at.toString(16)}`).toContain('"written-via-a-0"');
      expect(gdbString(core, at + 3 * 4096), `page 3 at 0x${at.toString(16)}`).toContain('"written-via-b-3"');
    }
  });

  it('holds the object at both addresses, and gdb reads the marker at each', async () => {
    const [first, second] = await start(TARGET);
    const frames = await captureFrames(p!.pid!);
    const vmas = frames.flatMap((f) => (f.body.type === FrameType.VmaBegin ? [f.body.vma] : []));
    const at = (a: number) => vmas.find((v) => v.start === a)!;
    expect(at(first).flags & VmaFlag.SharedElsewhere || at(second).flags & VmaFlag.SharedElsewhere).toBeTruthy(); // dumped once
    const core = join(work, 'twice.core');
    const stats = await writeElfCore(replay(frames), core);
    expect(stats.sharedCopied).toBeGreaterThan(0);
    for (const a of [first, second]) expect(gdbString(core, a + 5 * 4096), `at 0x${a.toString(16)}`).toContain('"pagevault-shared-marker"');
  });
});
