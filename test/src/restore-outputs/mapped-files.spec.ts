import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { FrameType, type Frame } from '@pagevault/format';
import { writeElfCore, writeLiveProcess, writeRawImages, type RawLayout } from '@pagevault/restore';
import { cliOn } from '../cli/cli-env';
import { captureFrames, replay, selectRanges } from './helpers/capture-frames';

// A real process mapping a file privately (every page read, so present and still the file's), captured
// on this host: its pages go as file runs, and a restore reads them from the file — which must still be
// the file the process mapped. And a process in its own mount namespace, where the path names another
// file than ours: its pages must be copied, for no restore could read them by that path.

const PS = 4096;
const PAGES = 8;
const work = mkdtempSync(join(tmpdir(), 'pv-mapped-files-'));
const running: ChildProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Page k of a file of `fill`: every byte fill + k. */
const fileBytes = (fill: number) => Buffer.concat(Array.from({ length: PAGES }, (_, k) => Buffer.alloc(PS, fill + k)));

const MAPPER = `
import mmap, sys
f = open(sys.argv[1], 'rb')
m = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
s = sum(m[i] for i in range(0, len(m), 4096))  # every page read: present, the file's
if len(sys.argv) > 2:  # mapped a second time: two VMAs of the one file
    m2 = mmap.mmap(f.fileno(), 0, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    s += sum(m2[i] for i in range(0, len(m2), 4096))
sys.stdout.write('ready\\n'); sys.stdout.flush()
sys.stdin.read()
`;

// The same, at a fixed address (MAP_FIXED_NOREPLACE), so that a second process can be prepared with the
// first one's layout for a live restore.
const FIXED_MAPPER = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
at = libc.mmap(int(sys.argv[2], 16), size, 1, 0x02 | 0x100000, fd, 0)  # PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE
if at != int(sys.argv[2], 16): raise SystemExit('mmap: errno %d' % ctypes.get_errno())
s = sum(ctypes.c_char.from_address(at + i).value[0] for i in range(0, size, 4096))
sys.stdout.write('ready\\n'); sys.stdout.flush()
sys.stdin.read()
`;
const FIXED_AT = 0x5a5a00000000;

/** Starts python mapping `path` (through `wrap`, e.g. an unshare, that execs it), once it has read every page. */
async function mapper(path: string, wrap: string[] = [], fixedAt?: number, twice = false): Promise<number> {
  const argv = [...wrap, 'python3', '-c', fixedAt === undefined ? MAPPER : FIXED_MAPPER, path, ...(fixedAt === undefined ? (twice ? ['twice'] : []) : [fixedAt.toString(16)])];
  const p = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  running.push(p);
  await new Promise<void>((res, rej) => {
    createInterface({ input: p.stdout! }).once('line', (l) => (l === 'ready' ? res() : rej(new Error(l))));
    p.once('exit', (c) => rej(new Error(`mapper exited ${c}`)));
  });
  const pid = p.pid!; // unshare and sh exec what follows: the same process
  expect(readFileSync(`/proc/${pid}/maps`, 'utf8')).toContain(path);
  return pid;
}

/** The VMA of `path` in a capture, and what its pages went as. */
function vmaOf(frames: Frame[], path: string): { index: number; start: number; file: number; data: number } {
  let cur: { index: number; start: number; file: number; data: number } | undefined;
  let found: typeof cur;
  for (const f of frames) {
    const b = f.body;
    if (b.type === FrameType.VmaBegin) cur = b.vma.path === path ? { index: b.vma.index, start: b.vma.start, file: 0, data: 0 } : undefined;
    if (!cur) continue;
    if (b.type === FrameType.FileRuns) cur.file += b.runs.reduce((n, r) => n + r.pages, 0);
    if (b.type === FrameType.PageChunk) cur.data += b.addresses.length;
    if (b.type === FrameType.VmaEnd) found = cur;
  }
  return found!;
}

describe('pages referenced in their mapped file', () => {
  it("are read from the same file; on the snapshot's host a file replaced since fails the restore, naming it", async () => {
    const lib = join(work, 'lib-a.so');
    writeFileSync(lib, fileBytes(0x10));
    const pid = await mapper(lib);
    const frames = await captureFrames(pid, hostname());
    const v = vmaOf(frames, lib);
    expect(v).toMatchObject({ file: PAGES, data: 0 }); // referenced, not copied

    const before = await writeRawImages(replay(frames), join(work, 'raw-same'));
    expect(before.pages.fileMissing).toBe(0);
    const entry = before.layout.vmas.find((x) => x.path === lib)!;
    expect(readFileSync(join(work, 'raw-same', entry.image!)).equals(fileBytes(0x10))).toBe(true);

    // An upgrade: a new file renamed over the path (the process keeps the old inode, now deleted).
    writeFileSync(lib + '.new', fileBytes(0x50));
    renameSync(lib + '.new', lib);
    for (const [name, write] of [
      ['raw', (out: string) => writeRawImages(replay(frames), out)],
      ['elf', (out: string) => writeElfCore(replay(frames), out)],
    ] as const) {
      const out = join(work, `${name}-replaced`);
      await expect(write(out), name).rejects.toMatchObject({
        code: ErrorCodes.FILE_UNAVAILABLE,
        message: expect.stringContaining(`maps ${lib}, which is another file than the one mapped`),
        details: { path: lib, vma: v.index },
      });
      expect(() => readFileSync(out)).toThrow(); // nothing written that looks complete
    }
    const allowed = await writeRawImages(replay(frames), join(work, 'raw-allowed'), { onMissingFile: 'allow' });
    expect(allowed.pages.fileMissing).toBe(PAGES);
    expect(allowed.missingFiles).toEqual([{ path: lib, reason: expect.stringContaining('replaced since the snapshot'), pages: PAGES }]);
    const img = readFileSync(join(work, 'raw-allowed', allowed.layout.vmas.find((x) => x.path === lib)!.image!));
    expect(img.every((b) => b === 0)).toBe(true); // left out: never the new file's bytes
    const layout = JSON.parse(readFileSync(join(work, 'raw-allowed', 'layout.json'), 'utf8')) as RawLayout;
    expect(layout.vmas.find((x) => x.path === lib)!.pages.fileMissing).toBe(PAGES);
  });

  it('are copied when the path names another file here than in the process (its own mount namespace)', async () => {
    const ours = join(work, 'lib-b.so');
    const theirs = join(work, 'lib-b-theirs.so');
    writeFileSync(ours, fileBytes(0x20));
    writeFileSync(theirs, fileBytes(0x70));
    // The process sees `theirs` at the path `ours`, as a container sees its own root's files.
    const pid = await mapper(ours, ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `mount --bind ${theirs} ${ours} && exec "$0" "$@"`]);
    const frames = await captureFrames(pid, hostname());
    expect(vmaOf(frames, ours)).toMatchObject({ file: 0, data: PAGES });
    rmSync(theirs);
    const r = await writeRawImages(replay(frames), join(work, 'raw-ns'));
    expect(r.pages.fileMissing).toBe(0);
    const img = readFileSync(join(work, 'raw-ns', r.layout.vmas.find((x) => x.path === ours)!.image!));
    expect(img.equals(fileBytes(0x70))).toBe(true); // what the process had mapped, not our file at that path
  });

  it('make `pagevault restore` exit 4 naming the replaced file, or warn and leave zeros with --allow-missing-files', async () => {
    const lib = join(work, 'lib-c.so');
    writeFileSync(lib, fileBytes(0x30));
    const pid = await mapper(lib);
    const { pv, pvJson } = cliOn(join(work, 'store'));
    const id = pvJson<{ snapshotId: string }[]>('snapshot', String(pid))[0]!.snapshotId;
    // Taken under another name for this host (--host, as an agent's PV_HOST_NAME): the same name at restore says it is this host.
    const named = pvJson<{ snapshotId: string }[]>('--host', 'pv-test-alias', 'snapshot', String(pid))[0]!.snapshotId;
    writeFileSync(lib + '.new', fileBytes(0x60));
    renameSync(lib + '.new', lib);
    expect(pv('--host', 'pv-test-alias', 'restore', named, '--format', 'raw', '--out', join(work, 'cli-alias')).code).toBe(4);
    for (const format of ['raw', 'elf']) {
      const r = pv('restore', id, '--format', format, '--out', join(work, `cli-${format}`));
      expect(r.code, r.err).toBe(4);
      expect(r.err).toContain(`PV_FILE_UNAVAILABLE: VMA`);
      expect(r.err).toContain(`maps ${lib}, which is another file than the one mapped`);
      expect(r.err).toContain('--allow-missing-files');
    }
    const ok = pv('restore', id, '--format', 'raw', '--out', join(work, 'cli-raw'), '--allow-missing-files');
    expect(ok.code, ok.err).toBe(0);
    expect(ok.err).toContain(`warning: ${PAGES} page(s) of ${lib} left out (zeros): it is another file than the one mapped`);
    // verify: the store holds the snapshot whole; the replaced file is named as what a restore here lacks.
    const v = pv('--json', 'verify', id);
    expect(v.code, v.err).toBe(0);
    expect((JSON.parse(v.out) as { ok: boolean; filePagesUnavailable: number }[])[0]).toMatchObject({ ok: true, filePagesUnavailable: PAGES });
    expect(v.err).toContain(`references ${PAGES} page(s) of ${lib}, which is another file than the one mapped`);
    // The stream output references the file as the capture did: nothing to read, nothing to refuse.
    expect(pv('restore', id, '--format', 'stream', '--out', join(work, 'cli.stream')).code).toBe(0);
  });

  it('make `pagevault verify` name a mapped file truncated in place since, as restore would', async () => {
    const lib = join(work, 'lib-t.so');
    writeFileSync(lib, fileBytes(0x31));
    const pid = await mapper(lib);
    const { pv, pvJson } = cliOn(join(work, 'store-t'));
    const id = pvJson<{ snapshotId: string }[]>('snapshot', String(pid))[0]!.snapshotId;
    truncateSync(lib, PS); // same file (device and inode), one page left of PAGES
    const v = pv('--json', 'verify', id);
    expect(v.code, v.err).toBe(0);
    expect((JSON.parse(v.out) as { ok: boolean; filePagesUnavailable: number }[])[0]).toMatchObject({ ok: true, filePagesUnavailable: PAGES });
    expect(v.err).toContain(`references ${PAGES} page(s) of ${lib}, which is ${PS} bytes, shorter than the pages the snapshot maps from it`);
    const r = pv('restore', id, '--format', 'raw', '--out', join(work, 'cli-trunc'));
    expect([r.code, r.err]).toEqual([4, expect.stringContaining('shorter than the pages the snapshot maps from it')]);
  });

  it('make `pagevault diff` count the pages of a VMA that maps another file over the same range since', async () => {
    const [libA, libB] = [join(work, 'lib-ra.so'), join(work, 'lib-rb.so')];
    writeFileSync(libA, fileBytes(0x61));
    writeFileSync(libB, fileBytes(0x62));
    // Maps A at a fixed address; on a line on stdin, maps B over it (MAP_FIXED), reads it, says so.
    const remapper = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
at = int(sys.argv[3], 16)
def map(path, flags):
    fd = os.open(path, os.O_RDONLY)
    size = os.fstat(fd).st_size
    if libc.mmap(at, size, 1, flags, fd, 0) != at: raise SystemExit('mmap: errno %d' % ctypes.get_errno())
    return sum(ctypes.c_char.from_address(at + i).value[0] for i in range(0, size, 4096))
map(sys.argv[1], 0x02 | 0x100000)
print('a', flush=True)
sys.stdin.readline()
map(sys.argv[2], 0x02 | 0x10)
print('b', flush=True)
sys.stdin.readline()
`;
    const p = spawn('python3', ['-c', remapper, libA, libB, FIXED_AT.toString(16)], { stdio: ['pipe', 'pipe', 'inherit'] });
    running.push(p);
    const lines = createInterface({ input: p.stdout! })[Symbol.asyncIterator]();
    expect((await lines.next()).value).toBe('a');
    const { pvJson } = cliOn(join(work, 'store-remap'));
    const a = pvJson<{ snapshotId: string }[]>('snapshot', String(p.pid))[0]!.snapshotId;
    p.stdin!.write('\n');
    expect((await lines.next()).value).toBe('b');
    const b = pvJson<{ snapshotId: string }[]>('snapshot', String(p.pid), '--parent', a)[0]!.snapshotId;
    const rows = pvJson<{ vmas: { start: number; path: string; status: string; changed: number }[] }>('diff', a, b).vmas;
    expect(rows.find((r) => r.start === FIXED_AT)).toEqual({ start: FIXED_AT, path: libB, status: 'remapped', changed: PAGES });
  });

  it('make `pagevault verify` warn of a mapped file written in place since the snapshot (same device and inode)', async () => {
    const lib = join(work, 'lib-w.so');
    writeFileSync(lib, fileBytes(0x33));
    const pid = await mapper(lib);
    const { pv, pvJson } = cliOn(join(work, 'store-w'));
    const id = pvJson<{ snapshotId: string }[]>('snapshot', String(pid))[0]!.snapshotId;
    expect(pv('verify', id).err).not.toContain('modified since');
    await new Promise((r) => setTimeout(r, 20));
    writeFileSync(lib, fileBytes(0x34)); // rebuilt in place: truncated and written again, the same inode
    const v = pv('verify', id);
    expect(v.code, v.err).toBe(0); // the store holds the snapshot whole
    expect(v.err).toContain(`references pages of ${lib}, modified since the snapshot was taken`);
  });

  it('make `pagevault verify` name a file mapped by two VMAs once, with the pages of both', async () => {
    const lib = join(work, 'lib-2.so');
    writeFileSync(lib, fileBytes(0x22));
    const pid = await mapper(lib, [], undefined, true);
    const { pv, pvJson } = cliOn(join(work, 'store-2'));
    const id = pvJson<{ snapshotId: string }[]>('snapshot', String(pid))[0]!.snapshotId;
    truncateSync(lib, PS);
    const v = pv('verify', id);
    expect(v.code, v.err).toBe(0);
    const lines = v.err.split('\n').filter((l) => l.includes(lib));
    expect(lines).toEqual([expect.stringContaining(`references ${2 * PAGES} page(s) (in 2 VMAs) of ${lib}, which is ${PS} bytes`)]);
  });

  it('make a live restore into a prepared process fail, or keep its own pages if allowed, when the file was replaced', async () => {
    const lib = join(work, 'lib-d.so');
    writeFileSync(lib, fileBytes(0x40));
    const first = await mapper(lib, [], FIXED_AT);
    const range = [{ start: FIXED_AT, end: FIXED_AT + PAGES * PS }];
    const frames = selectRanges(await captureFrames(first, hostname()), range);
    expect(vmaOf(frames, lib)).toMatchObject({ file: PAGES });
    running.splice(0).forEach((p) => p.kill('SIGKILL'));
    // The same file still there: its pages are the target's page cache already, nothing is written.
    const same = await mapper(lib, [], FIXED_AT);
    const ok = await writeLiveProcess(replay(frames), same, { freeze: { method: 'signal' } });
    expect(ok).toMatchObject({ fileSkipped: PAGES, missingFiles: [] });
    running.splice(0).forEach((p) => p.kill('SIGKILL'));
    // Replaced: a prepared process maps the new file at the path; its pages are not the snapshot's.
    writeFileSync(lib + '.new', fileBytes(0x70));
    renameSync(lib + '.new', lib);
    const target = await mapper(lib, [], FIXED_AT);
    await expect(writeLiveProcess(replay(frames), target, { freeze: { method: 'signal' } })).rejects.toMatchObject({
      code: ErrorCodes.FILE_UNAVAILABLE, message: expect.stringContaining('is another file than the one mapped'),
    });
    expect(readFileSync(`/proc/${target}/stat`, 'utf8').split(') ')[1]![0]).not.toBe('T'); // thawed
    const allowed = await writeLiveProcess(replay(frames), target, { freeze: { method: 'signal' }, onMissingFile: 'allow' });
    expect(allowed.pages.fileMissing).toBe(PAGES);
    expect(allowed.missingFiles).toEqual([{ path: lib, reason: expect.stringContaining('replaced since'), pages: PAGES }]);
  });

  it('never open a FIFO (or anything but a regular file) found at the path: it would wait for a writer', async () => {
    const lib = join(work, 'lib-e.so');
    writeFileSync(lib, fileBytes(0x11));
    const pid = await mapper(lib);
    const frames = await captureFrames(pid);
    rmSync(lib);
    execFileSync('mkfifo', [lib]);
    const t0 = Date.now();
    await expect(writeRawImages(replay(frames), join(work, 'raw-fifo'))).rejects.toMatchObject({
      code: ErrorCodes.FILE_UNAVAILABLE, message: expect.stringContaining(`maps ${lib}, which is not a regular file`),
    });
    expect(Date.now() - t0).toBeLessThan(20_000); // (a hang is the failure; the bound is only the test's)
  });
});
