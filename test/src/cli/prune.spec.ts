import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirectoryObjectStore } from '@pagevault/objstore';
import { Repository } from '@pagevault/repo';
import { requireS3Server, s3Env, s3Store } from '../objstore/s3-env';
import { CLI, cliOn } from './cli-env';

// forget and prune through the built CLI, embedded mode: two processes, each holding 4 MiB of its own
// random bytes, so what only the forgotten snapshot stored is known to be at least that much.
const work = mkdtempSync(join(tmpdir(), 'pv-cli-prune-'));
const store = join(work, 'store');
const { pv, pvJson } = cliOn(store);

/** The CLI in the background, for a command that runs beside another: its pid, its stderr so far, its outcome. */
function pvAsync(...args: string[]) {
  const p = spawn(process.execPath, [CLI, '--store', store, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ code: number | null; out: string; err: string }>((resolve) => p.on('close', (code) => resolve({ code, out, err })));
  return { pid: p.pid!, done, err: () => err };
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  for (const end = Date.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 10))) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
  }
}
const RANDOM = 4 << 20;
const holders: ChildProcess[] = [];
let pids: number[];
let a: string;
let b: string;

interface Report {
  dryRun: boolean;
  snapshots: number;
  packs: { deleted: number; repacked: number; spared: number };
  mapNodes: { deleted: number; spared: number };
  indexFiles: { stored: number; deleted: number; written: number };
  bytes: { before: number; after: number; freed: number };
}

async function holder(bytes = RANDOM): Promise<number> {
  const p = spawn(process.execPath, ['-e', `const b = require('node:crypto').randomBytes(${bytes}); console.log('ready'); setInterval(() => b[0], 60000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  holders.push(p);
  await new Promise<void>((res, rej) => {
    createInterface({ input: p.stdout! }).once('line', () => res());
    p.once('exit', (code) => rej(new Error(`holder exited ${code}`)));
  });
  return p.pid!;
}

/** Every file of the repository directory with its size. */
function files(dir = store, out = new Map<string, number>()): Map<string, number> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else out.set(p, statSync(p).size);
  }
  return out;
}
const storedBytes = () => [...files()].filter(([p]) => /\/(packs|index|maps)\//.test(p)).reduce((n, [, s]) => n + s, 0);

beforeAll(async () => {
  pids = [await holder(), await holder()];
  a = pvJson<{ snapshotId: string }[]>('snapshot', String(pids[0]))[0]!.snapshotId;
  b = pvJson<{ snapshotId: string }[]>('snapshot', String(pids[1]))[0]!.snapshotId;
}, 180_000);

afterAll(() => {
  for (const p of holders) p.kill();
  rmSync(work, { recursive: true, force: true });
});

describe('pagevault forget and prune', () => {
  it('forget --json removes the snapshot from the listing and says which', () => {
    expect(pvJson('forget', '--dry-run', a.slice(0, 12))).toEqual({ dryRun: true, forgotten: [a] });
    expect(pvJson<{ id: string }[]>('ls').map((s) => s.id)).toEqual([a, b]);
    expect(pvJson('forget', a.slice(0, 12))).toEqual({ dryRun: false, forgotten: [a] });
    expect(pvJson<{ id: string }[]>('ls').map((s) => s.id)).toEqual([b]);
  });

  it('prune spares what is younger than --grace (1h by default)', () => {
    const before = files();
    const r = pv('--json', 'prune');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
    const report = JSON.parse(r.out) as Report;
    expect(report.packs).toMatchObject({ deleted: 0, repacked: 0 });
    expect(report.packs.spared).toBeGreaterThan(0);
    expect(report.mapNodes.deleted).toBe(0);
    expect(files()).toEqual(before);
  });

  it('prune exits 8 naming the holder while a snapshot is being ingested; --wait waits for it to end', async () => {
    const repo = new Repository(new DirectoryObjectStore(store), { locks: { host: 'compactor-9', pid: 999 } });
    const ingesting = await repo.lockShared(await repo.tenant('default')); // what `pagevault snapshot` holds while it ingests
    const before = files();
    const r = pv('prune', '--grace', '0');
    expect(r.code).toBe(8);
    expect(r.err).toMatch(/PV_REPO_LOCKED: tenant default .* is locked: shared lock t\/default\/locks\/shared-\w+ held by host compactor-9 pid 999, taken \d+ s ago/);
    expect(files()).toEqual(before);

    const waiting = pvAsync('--json', 'prune', '--wait', '30s');
    let exited = false;
    void waiting.done.then(() => (exited = true));
    await until('prune --wait to find the lock', () => waiting.err().includes('is locked'));
    expect(waiting.err()).toMatch(/tenant default is locked, waiting up to 30s: shared lock .* held by host compactor-9 pid 999/);
    await new Promise((r) => setTimeout(r, 500));
    expect(exited).toBe(false);
    await ingesting.release();
    const w = await waiting.done;
    expect(w.code).toBe(0);
    expect(JSON.parse(w.out)).toMatchObject({ dryRun: false, snapshots: 1 });
  });

  it('prune --dry-run --json reports what it would free and changes nothing', () => {
    const before = files();
    const dry = pvJson<Report>('prune', '--dry-run', '--grace', '0');
    expect(dry).toMatchObject({ dryRun: true, snapshots: 1 });
    expect(dry.packs.deleted + dry.packs.repacked).toBeGreaterThan(0);
    expect(dry.bytes.freed).toBeGreaterThan(RANDOM * 0.9);
    expect(files()).toEqual(before);
  });

  it('prune --json frees what only the forgotten snapshot held; the other still verifies page by page', () => {
    const before = storedBytes();
    const r = pvJson<Report>('prune', '--grace', '0', '--consolidate-above', '1');
    expect(r).toMatchObject({ dryRun: false, snapshots: 1 });
    // Merged: the forgotten snapshot's index file goes, the other's merges alone (unchanged), a repack adds one.
    const f = r.indexFiles;
    expect([...files().keys()].filter((p) => p.includes('/index/'))).toHaveLength(f.stored - f.deleted + f.written);
    expect(f.deleted).toBeGreaterThan(0);
    expect(r.bytes.before).toBe(before);
    expect(r.bytes.after).toBe(storedBytes());
    expect(r.bytes.freed).toBeGreaterThan(RANDOM * 0.9);
    const v = pvJson<{ id: string; pagesVerified: number; ok: boolean }[]>('verify');
    expect(v).toEqual([{ id: b, pagesVerified: expect.any(Number), ok: true, filePagesUnavailable: 0 }]);
    expect(v[0]!.pagesVerified).toBeGreaterThan(RANDOM / 4096);
  });

  it('exit codes: 3 for an unknown snapshot, 2 for a bad --grace or nothing to forget, 4 when a node is missing', () => {
    expect(pv('forget', 'f'.repeat(32)).code).toBe(3);
    expect(pv('prune', '--grace', '1 hour').code).toBe(2);
    expect(pv('prune', '--consolidate-above', '0').code).toBe(2);
    expect(pv('forget').code).toBe(2);
    const maps = [...files().keys()].filter((p) => p.includes('/maps/'));
    unlinkSync(maps[0]!);
    const r = pv('prune', '--grace', '0');
    expect(r.code).toBe(4);
    expect(r.err).toContain('PV_OBJECT_NOT_FOUND');
    expect(r.err).toContain(maps[0]!.slice(store.length + 1));
    expect(r.err).toContain('deletes nothing');
  });

  it('prune is refused while `pagevault snapshot` is ingesting into the same store', async () => {
    const big = await holder(192 << 20);
    const locks = join(store, 't', 'default', 'locks');
    const ingesting = () => existsSync(locks) && readdirSync(locks).some((n) => n.startsWith('shared-'));
    const snap = pvAsync('--json', 'snapshot', String(big));
    await until('the snapshot to take its lock', ingesting);
    const r = pv('prune');
    const s = await snap.done;
    expect(s.code).toBe(0);
    expect(r.code).toBe(8);
    expect(r.err).toContain(`pid ${snap.pid}`);
    expect(ingesting()).toBe(false); // released once its manifest was written
  });
});

describe('pagevault forget and prune --s3', () => {
  const tenant = `it-cli-prune-${Date.now().toString(36)}`;
  const s3 = cliOn(store, {
    PV_S3_ENDPOINT: s3Env.endpoint, PV_S3_BUCKET: s3Env.bucket, PV_S3_REGION: s3Env.region,
    PV_S3_ACCESS_KEY: s3Env.accessKeyId, PV_S3_SECRET_KEY: s3Env.secretAccessKey,
  });
  const pvS3 = <T>(...args: string[]) => s3.pvJson<T>('--s3', '--tenant', tenant, ...args);
  beforeAll(() => requireS3Server(s3Store()));
  afterAll(async () => {
    const bucket = s3Store();
    for await (const o of bucket.list(`t/${tenant}/`)) await bucket.delete(o.key);
    bucket.destroy();
  });

  it('forgets a snapshot in the bucket and prunes what only it held; the other still verifies', () => {
    const [sa, sb] = pids.map((pid) => pvS3<{ snapshotId: string }[]>('snapshot', String(pid))[0]!.snapshotId);
    expect(pvS3('forget', sa!)).toEqual({ dryRun: false, forgotten: [sa] });
    expect(pvS3<Report>('prune').packs).toMatchObject({ deleted: 0, repacked: 0 }); // all within the grace
    const r = pvS3<Report>('prune', '--grace', '0');
    expect(r).toMatchObject({ dryRun: false, snapshots: 1 });
    expect(r.bytes.freed).toBeGreaterThan(RANDOM * 0.9);
    expect(pvS3<{ id: string; ok: boolean }[]>('verify')).toEqual([{ id: sb, pagesVerified: expect.any(Number), ok: true, filePagesUnavailable: 0 }]);
  });

  it('writes nothing to stderr on success: no AWS SDK notice about the Node version', () => {
    const r = s3.pv('--s3', '--tenant', tenant, 'ls');
    expect(r.code).toBe(0);
    expect(r.err).toBe('');
  });
});

describe('forget --keep-last', () => {
  it('forgets all but the newest n of each host and pid, and is refused beside named snapshots', async () => {
    const own = cliOn(join(work, 'keep-last'));
    const keep = spawn(process.execPath, ['-e', "console.log('ready'); setInterval(() => {}, 1e6);"], { stdio: ['ignore', 'pipe', 'inherit'] });
    const other = spawn(process.execPath, ['-e', "console.log('ready'); setInterval(() => {}, 1e6);"], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await Promise.all([keep, other].map((p) => new Promise((r) => createInterface({ input: p.stdout! }).once('line', r))));
      const snap = (pid: number) => own.pvJson<{ snapshotId: string }[]>('snapshot', String(pid))[0]!.snapshotId;
      const [k1, k2, k3] = [snap(keep.pid!), snap(keep.pid!), snap(keep.pid!)];
      const o1 = snap(other.pid!);
      expect(own.pv('forget', k3!, '--keep-last', '1').code).toBe(2); // which was meant? neither is done
      const wrongParent = own.pv('snapshot', String(other.pid!), '--parent', k3!);
      expect([wrongParent.code, wrongParent.err]).toEqual([2, expect.stringContaining(`is snapshot ${k3} of pid ${keep.pid}, not of pid ${other.pid}`)]);
      expect(own.pvJson<{ id: string }[]>('ls').map((s) => s.id).sort()).toEqual([k1, k2, k3, o1].sort());
      expect(own.pvJson('forget', '--keep-last', '2', '--dry-run')).toEqual({ dryRun: true, forgotten: [k1] });
      expect(own.pvJson('forget', '--keep-last', '2')).toEqual({ dryRun: false, forgotten: [k1] });
      expect(own.pvJson<{ id: string }[]>('ls').map((s) => s.id).sort()).toEqual([k2, k3, o1].sort());
    } finally {
      keep.kill('SIGKILL');
      other.kill('SIGKILL');
    }
  });
});
