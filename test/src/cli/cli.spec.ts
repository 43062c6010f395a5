import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildMemtarget, readProcessMemory, startMemtarget, type Running, type SourceInfo, stopAndWait } from '../restore-outputs/helpers/memtarget';
import { CLI, cliOn } from './cli-env';

// The built CLI (`pagevault`), embedded mode: an in-process frame log and a directory store.
const work = mkdtempSync(join(tmpdir(), 'pv-cli-'));
const store = join(work, 'store');
const { pv, pvJson } = cliOn(store);
let src: Running<SourceInfo>;

let first: string;
let second: string;

beforeAll(async () => {
  buildMemtarget();
  src = await startMemtarget<SourceInfo>(['source']);
  await stopAndWait(src.info.pid);
  first = pvJson<{ snapshotId: string }[]>('snapshot', String(src.info.pid))[0]!.snapshotId;
  second = pvJson<{ snapshotId: string }[]>('snapshot', String(src.info.pid), '--parent', first)[0]!.snapshotId;
}, 180_000);

afterAll(async () => {
  await src?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('pagevault CLI, embedded mode', () => {
  it('lists and shows snapshots, as JSON for scripts', () => {
    const ls = pvJson<{ id: string; pid: number; mode: string; parent: string | null; logicalBytes: number; storedBytes: number }[]>('ls');
    expect(ls.map((s) => s.id).slice(0, 2)).toEqual([first, second]);
    expect(ls.map((s) => s.mode)).toEqual(['full', 'incremental']);
    // For scripts: the parent's whole id, sizes as numbers of bytes.
    expect(ls.map((s) => s.parent)).toEqual([null, first]);
    expect(ls[0]!.logicalBytes).toBeGreaterThan(ls[0]!.storedBytes);
    expect(ls[1]!.storedBytes).toBeLessThan(ls[0]!.storedBytes);
    const m = pvJson<{ snapshotId: string; parentId: string; vmas: unknown[] }>('show', second.slice(0, 10));
    expect(m.snapshotId).toBe(second);
    expect(m.parentId).toBe(first);
    expect(m.vmas.length).toBeGreaterThan(5);
    const table = pv('ls');
    expect(table.code).toBe(0);
    expect(table.out).toContain(first);
    // For people: kinds by name, permissions as in maps, and why a VMA has no pages.
    const shown = pv('show', second).out.split('\n');
    expect(shown.find((l) => l.includes('[heap]'))).toMatch(/ rw-p +Heap /);
    expect(shown.find((l) => l.includes('[vvar]'))).toMatch(/Vvar .*not read: the kernel's/);
  });

  it('writes the vsyscall page\'s address (above 2^53) with its exact digits: in --json and the stored manifest (a raw layout writes addresses in hex)', () => {
    const exact = String(0xffffffffff600000n); // 18446744073699065856; JSON.stringify writes ...066000
    const json = pv('--json', 'show', first).out;
    expect(json).toContain(`"start": ${exact}`);
    expect(json).not.toContain('18446744073699066000');
    const manifests = execFileSync('find', [store, '-path', `*${first}*`, '-type', 'f'], { encoding: 'utf8' }).split('\n').filter(Boolean);
    expect(manifests.some((f) => readFileSync(f, 'utf8').includes(`"start": ${exact}`)), manifests.join(', ')).toBe(true);
  });

  it('reports no changed pages between two snapshots of a stopped process', () => {
    const d = pvJson<{ vmas: { changed: number }[] }>('diff', first, second);
    expect(d.vmas.reduce((n, v) => n + v.changed, 0)).toBe(0);
  });

  it('counts the same changed pages from a to b as from b to a: rewritten, given back (MADV_DONTNEED), zeroed', async () => {
    // 64 pages of random bytes; between the snapshots 4 are rewritten, 8 given back (untouched again:
    // they read as zeros) and 2 set to zeros: 14 pages whose contents differ, whichever way round.
    const py = [
      'import mmap, os, sys',
      'm = mmap.mmap(-1, 64 * 4096, flags=mmap.MAP_PRIVATE)',
      'm[:] = os.urandom(64 * 4096)',
      'print(os.getpid(), flush=True)',
      'sys.stdin.readline()',
      'for p in range(4): m[p * 4096:p * 4096 + 8] = os.urandom(8)',
      'm.madvise(mmap.MADV_DONTNEED, 16 * 4096, 8 * 4096)',
      'm[32 * 4096:34 * 4096] = bytes(2 * 4096)',
      'print("changed", flush=True)',
      'sys.stdin.readline()',
    ].join('\n');
    // A store of its own: the other tests count this file's snapshots.
    const own = cliOn(join(work, 'diff-store'));
    const p = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: string[] = [];
    p.stdout.setEncoding('utf8').on('data', (d: string) => lines.push(...d.split('\n').filter(Boolean)));
    const line = async (n: number) => {
      for (let i = 0; i < 200 && lines.length < n; i++) await new Promise((r) => setTimeout(r, 25));
      return lines[n - 1]!;
    };
    try {
      const pid = await line(1);
      const a = own.pvJson<{ snapshotId: string }[]>('snapshot', pid)[0]!.snapshotId;
      p.stdin.write('\n');
      expect(await line(2)).toBe('changed');
      const b = own.pvJson<{ snapshotId: string }[]>('snapshot', pid, '--parent', a)[0]!.snapshotId;
      const total = (x: string, y: string) => own.pvJson<{ vmas: { changed: number }[] }>('diff', x, y).vmas.reduce((n, v) => n + v.changed, 0);
      const ab = total(a, b);
      expect(ab).toBe(total(b, a));
      // The mapping's 14, and whatever else the interpreter touched meanwhile (a few pages of its heap).
      expect(ab).toBeGreaterThanOrEqual(14);
      expect(ab).toBeLessThan(14 + 64);
      // A VMA's start is the same number in `diff --json` as in `show --json`, and hex in the table.
      const rows = own.pvJson<{ vmas: { start: unknown; changed: number }[] }>('diff', a, b).vmas;
      const starts = new Set([a, b].flatMap((id) => own.pvJson<{ vmas: { start: number }[] }>('show', id).vmas.map((v) => v.start)));
      expect(rows.length).toBeGreaterThan(0);
      for (const r of rows) expect(typeof r.start === 'number' && starts.has(r.start), String(r.start)).toBe(true);
      const table = own.pv('diff', a, b).out;
      for (const r of rows) expect(table).toContain((r.start as number).toString(16));
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('takes each of several pids incremental against its own latest with --parent latest, and refuses one id as the parent of several', () => {
    const own = cliOn(join(work, 'parents-store'));
    const a = spawn('sleep', ['60']);
    const b = spawn('sleep', ['60']);
    try {
      const pids = [String(a.pid), String(b.pid)];
      const full = own.pvJson<{ snapshotId: string; pid: number }[]>('snapshot', ...pids);
      const inc = own.pvJson<{ snapshotId: string; pid: number }[]>('snapshot', ...pids, '--parent', 'latest');
      const parents = inc.map((s) => own.pvJson<{ parentId: string; pid: number }>('show', s.snapshotId));
      expect(parents.map((m) => [m.pid, m.parentId])).toEqual(full.map((s) => [s.pid, s.snapshotId]));
      const refused = own.pv('snapshot', ...pids, '--parent', full[0]!.snapshotId);
      expect([refused.code, refused.err]).toEqual([2, expect.stringContaining("is one process's snapshot, and 2 pids are named")]);
      expect(own.pvJson<unknown[]>('ls').length).toBe(4); // nothing taken by the refused command
    } finally {
      a.kill('SIGKILL');
      b.kill('SIGKILL');
    }
  });

  it('restores a stream byte-identical to `pagevault dump` of the same stopped process', () => {
    const m = pvJson<{ startTimeMs: number }>('show', second);
    expect(pv('restore', second, '--format', 'stream', '--out', join(work, 'r.stream')).code).toBe(0);
    expect(pv('dump', String(src.info.pid), '--out', join(work, 'd.stream'), '--id', second, '--time', String(m.startTimeMs)).code).toBe(0);
    expect(readFileSync(join(work, 'r.stream')).equals(readFileSync(join(work, 'd.stream')))).toBe(true);
  });

  it('restores raw images and an ELF core that gdb reads markers from', () => {
    expect(pv('restore', first, '--format', 'raw', '--out', join(work, 'raw')).code).toBe(0);
    expect(readdirSync(join(work, 'raw'))).toContain('layout.json');
    expect(pv('restore', first, '--format', 'elf', '--out', join(work, 'core')).code).toBe(0);
    const out = execFileSync('gdb', ['-batch', '-nx', ...src.info.markers.flatMap((m) => ['-ex', `x/s ${m.addr}`]), buildMemtarget(), join(work, 'core')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000, killSignal: 'SIGKILL' });
    for (const mk of src.info.markers) expect(out).toContain(`"${mk.text}"`);
  });

  it('refuses bad pids and a store that is a file with exit 2, committing nothing', () => {
    const before = pvJson<unknown[]>('ls').length;
    const pid = String(src.info.pid);
    for (const [args, said] of [
      [['snapshot', pid, pid], `pid ${pid} is listed twice`],
      [['snapshot', '--group', pid, pid], `pid ${pid} is listed twice`],
      [['snapshot', pid, 'abc'], 'not a pid: abc'],
    ] as const) {
      const r = pv(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toContain(`PV_INVALID_ARGUMENT: ${said}`);
    }
    expect(pvJson<unknown[]>('ls')).toHaveLength(before);
    const file = join(work, 'plain-file');
    writeFileSync(file, 'not a store');
    const r = cliOn(file).pv('ls');
    expect(r.code).toBe(2);
    expect(r.err).toContain(`PV_INVALID_ARGUMENT: store ${file} is not a directory`);
  });

  it('refuses to replace an existing output without --force (exit 2, naming it), and replaces it with', () => {
    const core = join(work, 'kept.core');
    const raw = join(work, 'kept.raw');
    const dump = join(work, 'kept.dump');
    writeFileSync(core, 'not a core');
    mkdirSync(raw);
    writeFileSync(join(raw, 'notes.txt'), 'keep me');
    writeFileSync(dump, 'not a dump');
    for (const args of [['restore', first, '--format', 'elf', '--out', core], ['restore', first, '--format', 'raw', '--out', raw], ['dump', String(src.info.pid), '--out', dump]]) {
      const r = pv(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toContain('PV_INVALID_ARGUMENT: output ');
      expect(r.err).toContain(args.at(-1)!);
    }
    expect(readFileSync(core, 'utf8')).toBe('not a core');
    expect(readdirSync(raw)).toEqual(['notes.txt']);
    expect(readFileSync(dump, 'utf8')).toBe('not a dump');
    expect(readdirSync(work).filter((f) => f.includes('partial'))).toEqual([]);
    expect(pv('restore', first, '--format', 'elf', '--out', core, '--force').code).toBe(0);
    expect(readFileSync(core).subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    // --force replaces an earlier raw output, never a directory of someone's files.
    const mine = pv('restore', first, '--format', 'raw', '--out', raw, '--force');
    expect(mine.code).toBe(2);
    expect(mine.err).toContain('no layout.json');
    expect(readdirSync(raw)).toEqual(['notes.txt']);
    unlinkSync(join(raw, 'notes.txt'));
    expect(pv('restore', second, '--format', 'raw', '--out', raw).code).toBe(0); // empty: no --force needed
    expect(pv('restore', first, '--format', 'raw', '--out', raw, '--force').code).toBe(0);
    expect(readdirSync(raw)).toContain('layout.json');
    expect(JSON.parse(readFileSync(join(raw, 'layout.json'), 'utf8'))).toMatchObject({ snapshot: { id: first } });
    expect(pv('dump', String(src.info.pid), '--out', dump, '--force').code).toBe(0);
    expect(readFileSync(dump).subarray(0, 4).toString('latin1')).toBe('PVFR');
    expect(readdirSync(work).filter((f) => f.includes('partial') || f.includes('replaced'))).toEqual([]);
  });

  it('refuses outputs that would replace the repository, a device, or that name no usable path (exit 2), losing nothing', () => {
    const before = readdirSync(store).sort();
    const cases: [string[], string][] = [
      [['restore', first, '--format', 'raw', '--out', store, '--force'], 'overlaps the repository'],
      [['restore', first, '--format', 'raw', '--out', work, '--force'], 'overlaps the repository'],
      [['restore', first, '--format', 'stream', '--out', join(store, readdirSync(store)[0]!), '--force'], 'overlaps the repository'],
      [['restore', first, '--format', 'stream', '--out', '/dev/null', '--force'], 'character device'],
      [['dump', String(src.info.pid), '--out', '/dev/null', '--force'], 'character device'],
      [['restore', first, '--format', 'elf', '--out', join(work, 'no-such-dir', 'core')], 'does not exist'],
      [['restore', first, '--format', 'raw', '--out', join(work, 'no-such-dir', 'raw')], 'does not exist'],
      [['restore', first, '--format', 'elf', '--out', ''], '--out must name'],
      [['dump', String(src.info.pid), '--out', join(work, 'x.dump'), '--id', 'xyz'], '32 hex digits'],
      [['dump', String(src.info.pid), '--out', join(work, 'x.dump'), '--time', 'abc'], 'milliseconds'],
      [['dump', 'abc', '--out', join(work, 'x.dump')], 'not a pid'],
    ];
    for (const [args, why] of cases) {
      const r = pv(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err, args.join(' ')).toContain(why);
      expect(r.err).not.toContain('    at ');
    }
    // Another name for the store's directory (a bind mount: same device and inode, no link to resolve), either way round.
    const alias = join(work, 'alias');
    mkdirSync(alias, { recursive: true });
    const manifest = readdirSync(join(store, 't', 'default', 'snapshots'))[0]!;
    const viaAlias = (storeDir: string, out: string) =>
      spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && shift 2 && exec "$@"', 'sh', store, alias,
        process.execPath, CLI, '--store', storeDir, 'restore', first, '--format', 'elf', '--out', out, '--force'], { encoding: 'utf8', timeout: 120_000 });
    for (const r of [viaAlias(store, join(alias, 't', 'default', 'snapshots', manifest)), viaAlias(alias, join(store, 't', 'default', 'snapshots', manifest))]) {
      expect([r.status, r.stderr]).toEqual([2, expect.stringContaining('overlaps the repository')]);
    }
    expect(readdirSync(store).sort()).toEqual(before);
    expect(pvJson<unknown[]>('ls').length).toBeGreaterThanOrEqual(2);
    // Settings that name nothing or are not numbers: exit 2, a message, no stack trace.
    for (const [r, why] of [
      [cliOn('').pv('ls'), '--store must name a directory'],
      [cliOn(store, { PV_HASH_THREADS: 'abc' }).pv('ls'), 'PV_HASH_THREADS must be a number'],
      [cliOn(store, { PV_LOG_MEMORY_MIB: '1g' }).pv('ls'), 'PV_LOG_MEMORY_MIB must be a number of MiB'],
    ] as const) {
      expect(r.code, why).toBe(2);
      expect(r.err).toContain(why);
      expect(r.err).not.toContain('    at ');
    }
    expect(execFileSync('stat', ['-c', '%F', '/dev/null'], { encoding: 'utf8' }).trim()).toBe('character special file');
  });

  it('verifies every page of every snapshot', () => {
    const v = pvJson<{ id: string; pagesVerified: number; ok: boolean }[]>('verify');
    expect(v.length).toBe(2);
    expect(v.every((x) => x.ok && x.pagesVerified > 50)).toBe(true);
    // The whole store is read once, not a snapshot at a time; each snapshot's count is still what reading
    // it alone (through the restore path) finds.
    for (const x of v) expect(pvJson<{ pagesVerified: number }[]>('verify', x.id)).toEqual([{ id: x.id, ok: true, pagesVerified: x.pagesVerified, filePagesUnavailable: 0 }]);
    expect(pv('verify').err).toMatch(/read \d+ pack\(s\), .* once: \d+ distinct page\(s\) checked, 0 damaged object\(s\)\n/);
  });

  it('exits 3 naming an unknown snapshot', () => {
    const r = pv('show', 'f'.repeat(32));
    expect(r.code).toBe(3);
    expect(r.err).toContain('PV_UNKNOWN_SNAPSHOT');
    const nowhere = cliOn(join(work, 'no-such-store'));
    for (const cmd of ['ls', 'verify']) {
      const r2 = nowhere.pv(cmd);
      expect([r2.code, r2.err], cmd).toEqual([2, expect.stringContaining(`no store at ${join(work, 'no-such-store')}`)]);
    }
    const typo = pv('show', 'lastest'); // not a reference at all: the command line is wrong (2)
    expect([typo.code, typo.err]).toEqual([2, expect.stringContaining('"lastest" is not a snapshot id, an id prefix or latest')]);
  });

  it('exits 3 for an incremental whose parent does not exist', () => {
    const r = pv('snapshot', String(src.info.pid), '--parent', 'e'.repeat(32));
    expect(r.code).toBe(3);
    expect(r.err).toMatch(/PV_UNKNOWN_SNAPSHOT|PV_PARENT_MISSING/);
  });

  it('tags snapshots, lists by tag, and resolves latest:tag= / latest:pid= for restore', () => {
    expect(pvJson<{ tags: string[] }>('tag', first, 'baseline', 'keep').tags).toEqual(['baseline', 'keep']);
    const [third] = pvJson<{ snapshotId: string; tags: string[] }[]>('snapshot', '--tag', 'nightly', '--tag', 'keep', String(src.info.pid));
    expect(third!.tags).toEqual(['nightly', 'keep']);
    expect(pvJson<{ id: string }[]>('ls', '--tag', 'keep').map((s) => s.id)).toEqual([first, third!.snapshotId]);
    expect(pvJson<{ snapshotId: string }>('show', 'latest:tag=baseline').snapshotId).toBe(first);
    expect(pvJson<{ snapshotId: string }>('show', `latest:pid=${src.info.pid},tag=keep`).snapshotId).toBe(third!.snapshotId);
    expect(pv('restore', 'latest:tag=nightly', '--format', 'stream', '--out', join(work, 'tagged.stream')).code).toBe(0);
    const m = pvJson<{ startTimeMs: number }>('show', third!.snapshotId);
    expect(pv('dump', String(src.info.pid), '--out', join(work, 'tagged.dump'), '--id', third!.snapshotId, '--time', String(m.startTimeMs)).code).toBe(0);
    expect(readFileSync(join(work, 'tagged.stream')).equals(readFileSync(join(work, 'tagged.dump')))).toBe(true);
    expect(pvJson<{ tags: string[] }>('tag', '--remove', first, 'baseline').tags).toEqual(['keep']);
    const none = pv('show', 'latest:tag=baseline');
    expect(none.code).toBe(3);
    expect(none.err).toContain('tag=baseline');
    expect(pv('tag', first, 'no/slashes').code).toBe(2);
  });

  it('exits 4 when a pack has a flipped byte, then when it is deleted, naming it', () => {
    const packsDir = join(store, 't/default/packs');
    const packs = readdirSync(packsDir).flatMap((d) => readdirSync(join(packsDir, d)).map((f) => join(packsDir, d, f)));
    expect(packs.length).toBeGreaterThan(0);
    const victim = packs[0]!;
    const bytes = readFileSync(victim);
    bytes[Math.floor(bytes.length / 3)] ^= 0x40;
    writeFileSync(victim, bytes);
    const bad = pv('verify', first);
    expect(bad.code).toBe(4);
    expect(bad.err).toMatch(/PV_PAGE_HASH_MISMATCH|PV_OBJECT_CORRUPT/);
    unlinkSync(victim);
    const gone = pv('restore', first, '--format', 'raw', '--out', join(work, 'raw2'));
    expect(gone.code).toBe(4);
    expect(gone.err).toContain('PV_OBJECT_NOT_FOUND');
    expect(gone.err).toContain(victim.slice(store.length + 1));
    expect(() => readdirSync(join(work, 'raw2'))).toThrow(); // no partial output that looks complete
  });

  it('pre-copies in rounds that chain to a frozen final round, and freezes a group together', () => {
    const a = spawn('sleep', ['120']);
    const b = spawn('sleep', ['120']);
    try {
      const rounds = pvJson<{ snapshotId: string; note: string }[]>('snapshot', '--pre-copy', '100', String(a.pid));
      expect(rounds.length).toBeGreaterThanOrEqual(2);
      expect(rounds.at(-1)!.note).toMatch(/^final, frozen/);
      const last = pvJson<{ parentId: string; consistency: string }>('show', rounds.at(-1)!.snapshotId);
      expect(last.parentId).toBe(rounds.at(-2)!.snapshotId);
      expect(last.consistency).toBe('precopy');
      const group = pvJson<{ pid: number; groupId: string }[]>('snapshot', '--group', String(a.pid), String(b.pid));
      expect(group.map((g) => g.pid).sort()).toEqual([a.pid, b.pid].sort());
      expect(group[0]!.groupId).toMatch(/^[0-9a-f]{32}$/);
      expect(group[1]!.groupId).toBe(group[0]!.groupId);
    } finally {
      a.kill();
      b.kill();
    }
  });

  it('ends quietly with exit 0 when the reader of its output has gone (pagevault ls | head)', async () => {
    const p = spawn(process.execPath, [CLI, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    p.stdout.destroy(); // the read end closed before the CLI writes: its write fails with EPIPE
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const code = await new Promise<number | null>((r) => p.once('close', r));
    expect(err).not.toContain('EPIPE');
    expect(code).toBe(0);
  });

  it('rolls a running process back to its snapshot with restore --format live: frozen meanwhile, running after', async () => {
    const own = cliOn(join(work, 'rollback'));
    const p = await startMemtarget<SourceInfo>(['source']);
    try {
      const pid = p.info.pid;
      const [snap] = own.pvJson<{ snapshotId: string }[]>('snapshot', String(pid));
      const regions = p.info.regions.map((r) => ({ start: Number(r.start), len: r.pages * p.info.pageSize }));
      const before = regions.map((r) => readProcessMemory(pid, r.start, r.len));
      const mem = openSync(`/proc/${pid}/mem`, 'r+');
      for (const r of regions.slice(0, 1)) writeSync(mem, Buffer.alloc(r.len, 0x5a), 0, r.len, r.start);
      closeSync(mem);
      const anon = () => Number(/^Anonymous:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))![1]);
      const anonBefore = anon();
      const r = own.pvJson<{ frozenMs: number; untouchedChecked: number; fileSkipped: number; pages: { file: number } }>('restore', snap!.snapshotId, '--format', 'live', '--out', String(pid));
      expect(r.frozenMs).toBeGreaterThan(0);
      expect(r.untouchedChecked).toBeGreaterThan(0);
      // The pages of its files it maps as they are on disk are left alone, not copied over themselves.
      expect(r.fileSkipped).toBeGreaterThan(0);
      expect(r.pages.file).toBe(0);
      expect(anon()).toBe(anonBefore);
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]).not.toBe('T');
      regions.forEach((x, i) => expect(readProcessMemory(pid, x.start, x.len).equals(before[i]!), `region ${i}`).toBe(true));
    } finally {
      await p.stop();
    }
  });

  it('exits 6 for a process that does not exist', () => {
    const r = pv('snapshot', '999999999');
    expect(r.code).toBe(6);
    expect(r.err).toContain('PV_NO_SUCH_PROCESS');
    // Listed after a live one: refused before the first is taken.
    const before = pvJson<unknown[]>('ls').length;
    const both = pv('snapshot', String(src.info.pid), '999999999');
    expect(both.code).toBe(6);
    expect(both.err).toContain('nothing was snapshotted');
    expect(pvJson<unknown[]>('ls').length).toBe(before);
  });

  it('refuses options a mode would ignore (exit 2) instead of dropping them', () => {
    for (const args of [['--tree', String(src.info.pid), '--parent', first], ['--pre-copy', 'zzzz', String(src.info.pid)], ['--live', '--group', String(src.info.pid)], [String(src.info.pid), '--tree', '1']]) {
      const r = pv('snapshot', ...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toContain('PV_INVALID_ARGUMENT');
    }
  });
});
