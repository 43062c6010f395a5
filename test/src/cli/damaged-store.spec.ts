import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
      { id: intact, ok: true, pagesVerified: expect.any(Number) },
    ]);
    expect(rows[1]!.pagesVerified).toBeGreaterThan((4 << 20) / 4096);
    expect(r.err).toMatch(new RegExp(`PV_OBJECT_CORRUPT: 1 of 2 snapshots failed verification: ${damaged}: `));
  });

  it('verify of the intact snapshot alone passes, and restore of the damaged one exits 4', () => {
    expect(pvJson<{ ok: boolean }[]>('verify', intact)).toEqual([{ id: intact, ok: true, pagesVerified: expect.any(Number) }]);
    const r = pv('restore', damaged, '--format', 'raw', '--out', join(work, 'raw'));
    expect(r.code).toBe(4);
    expect(r.err).toContain('PV_OBJECT_CORRUPT');
  });
});
