import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cliOn } from './cli-env';

// A store where one of two snapshots has a damaged manifest: listings and checks report it and go on.
const work = mkdtempSync(join(tmpdir(), 'pv-damaged-'));
const store = join(work, 'store');
const { pv, pvJson } = cliOn(store);
let target: ChildProcess;
let damaged: string;
let intact: string;

beforeAll(async () => {
  target = spawn(process.execPath, ['-e', "globalThis.keep = require('node:crypto').randomBytes(4 << 20); console.log('ready'); setInterval(() => {}, 1e6);"], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => createInterface({ input: target.stdout! }).once('line', r));
  damaged = pvJson<{ snapshotId: string }[]>('snapshot', String(target.pid))[0]!.snapshotId;
  intact = pvJson<{ snapshotId: string }[]>('snapshot', String(target.pid))[0]!.snapshotId;
  const key = join(store, 't/default/snapshots', `${damaged}.json`);
  writeFileSync(key, readFileSync(key).subarray(0, 200)); // cut short, as by a disk that lost its tail
}, 120_000);

afterAll(() => {
  target?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('a store with a damaged manifest', () => {
  it('ls lists the other snapshots, names the damaged manifest and exits 4', () => {
    const r = pv('--json', 'ls');
    expect(r.code).toBe(4);
    expect((JSON.parse(r.out) as { id: string }[]).map((s) => s.id)).toEqual([intact]);
    expect(r.err).toContain(`PV_OBJECT_CORRUPT: manifest t/default/snapshots/${damaged}.json: not JSON`);
  });

  it('verify checks every snapshot, reports each, and exits 4 naming the damaged one', () => {
    const r = pv('--json', 'verify');
    expect(r.code).toBe(4);
    const rows = JSON.parse(r.out) as { id: string; ok: boolean; pagesVerified: number; error?: string }[];
    expect(rows).toEqual([
      { id: damaged, ok: false, pagesVerified: 0, error: 'PV_OBJECT_CORRUPT' },
      { id: intact, ok: true, pagesVerified: expect.any(Number), filePagesUnavailable: 0 },
    ]);
    expect(rows[1]!.pagesVerified).toBeGreaterThan((4 << 20) / 4096);
    expect(r.err).toMatch(new RegExp(`PV_OBJECT_CORRUPT: 1 of 2 checked failed verification: ${damaged}: `));
  });

  it('verify of the intact snapshot alone passes, and restore of the damaged one exits 4', () => {
    expect(pvJson<{ ok: boolean }[]>('verify', intact)).toEqual([{ id: intact, ok: true, pagesVerified: expect.any(Number), filePagesUnavailable: 0 }]);
    const r = pv('restore', damaged, '--format', 'raw', '--out', join(work, 'raw'));
    expect(r.code).toBe(4);
    expect(r.err).toContain('PV_OBJECT_CORRUPT');
  });

  it('resolves latest to the latest readable snapshot, with a warning', () => {
    const r = pv('--json', 'show', 'latest');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as { snapshotId: string }).snapshotId).toBe(intact);
    expect(r.err).toContain(`pagevault: warning: left out a damaged manifest: manifest t/default/snapshots/${damaged}.json`);
  });

  it('forgets the damaged manifest by an id prefix; ls is whole again', () => {
    expect(pvJson<{ forgotten: string[] }>('forget', damaged.slice(0, 10))).toEqual({ dryRun: false, forgotten: [damaged] });
    expect(pvJson<{ id: string }[]>('ls').map((s) => s.id)).toEqual([intact]);
  });
});

describe('a store with a damaged index file', () => {
  it('still lists, says so, fails what needs it naming repair-index, and repair-index rebuilds it from the packs', () => {
    const dir = join(store, 't/default/index');
    for (const f of readdirSync(dir)) truncateSync(join(dir, f), 100);
    writeFileSync(join(dir, 'README.txt'), 'not an index file'); // ignored by every reader, kept by repair
    const ls = pv('--json', 'ls');
    expect(ls.code).toBe(0);
    expect(ls.err).toContain('pagevault: warning: index t/default/index/');
    const v = pv('--json', 'verify');
    expect(v.code).toBe(4);
    expect(v.err).toContain('pagevault repair-index');
    const restore = pv('restore', intact, '--format', 'raw', '--out', join(work, 'raw-before'));
    expect(restore.code).toBe(4);
    expect(restore.err).toContain('repair-index');
    const dry = pvJson<{ indexFiles: { damaged: string[] }; packsReindexed: number; written: string[] }>('repair-index', '--dry-run');
    expect(dry.indexFiles.damaged.length).toBeGreaterThan(0);
    expect(dry.packsReindexed).toBeGreaterThan(0);
    expect(dry.written).toEqual([]);
    const r = pvJson<{ written: string[]; strayFiles: string[] }>('repair-index');
    expect(r.written.length).toBeGreaterThan(0);
    expect(r.strayFiles).toEqual(['t/default/index/README.txt']);
    expect(readFileSync(join(dir, 'README.txt'), 'utf8')).toBe('not an index file');
    const ok = pv('--json', 'verify');
    expect(ok.code, ok.err).toBe(0);
    expect(ok.err).toBe('');
    expect(pv('restore', intact, '--format', 'raw', '--out', join(work, 'raw-after')).code).toBe(0);
  });
});

describe('a store with a pack damaged where no restore reads (its trailer)', () => {
  it('verify of the whole store reads every pack against its name and exits 4 naming it; restores still read right', () => {
    const packs = join(store, 't/default/packs');
    const [file] = readdirSync(packs, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).map((d) => join(d.parentPath, d.name));
    const bytes = readFileSync(file!);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1]! ^= 0xff; // the trailer: what repair-index rebuilds the index from
    writeFileSync(file!, flipped);
    try {
      const r = pv('--json', 'verify');
      expect(r.code).toBe(4);
      const rows = JSON.parse(r.out) as { id: string; ok: boolean; error?: string }[];
      const key = file!.slice(store.length + 1);
      expect(rows.filter((x) => !x.ok)).toEqual([{ id: key, ok: false, pagesVerified: 0, error: 'PV_OBJECT_CORRUPT' }]);
      expect(rows.find((x) => x.id === intact)?.ok).toBe(true); // its pages all read right
      expect(r.err).toContain(`${key}: its bytes do not hash to its name`);
      expect(pv('restore', intact, '--format', 'raw', '--out', join(work, 'raw-trailer')).code).toBe(0);
      const table = pv('verify');
      expect(table.err).toMatch(/read \d+ pack\(s\), .* once: \d+ distinct page\(s\) checked, [1-9]\d* not \(in damaged or missing objects\), 1 damaged object\(s\); reading the snapshots one by one/);
      expect(table.out.split('\n')[0]).toMatch(/\berror\b/); // the error column, whatever row comes first
    } finally {
      writeFileSync(file!, bytes);
    }
    expect(pv('verify').code).toBe(0);
  });
});

describe('a manifest damaged into other valid JSON', () => {
  it('is refused by show, verify and restore, exit 4 naming it, by its checksum', () => {
    const key = join(store, 't/default/snapshots', `${intact}.json`);
    const text = readFileSync(key, 'utf8');
    const m = /"pid": (\d+)/.exec(text)!;
    writeFileSync(key, text.replace(m[0], `"pid": ${Number(m[1]) + 1}`)); // one digit: still a manifest to JSON.parse
    try {
      for (const args of [['show', intact], ['verify', intact], ['restore', intact, '--format', 'elf', '--out', join(work, 'core-damaged')]]) {
        const r = pv(...args);
        expect(r.code, args.join(' ')).toBe(4);
        expect(r.err).toContain(`manifest t/default/snapshots/${intact}.json: its checksum does not match its fields`);
      }
    } finally {
      writeFileSync(key, text);
    }
    expect(pv('show', intact).code).toBe(0);
  });
});
