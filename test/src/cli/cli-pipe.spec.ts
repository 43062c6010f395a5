import { execSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, cliOn } from './cli-env';

// A target with ~2,000 VMAs (every other page of one mapping made read-only): `show --json` of it is
// ~1 MB, far more than a pipe holds (64 KiB).
const MANY_VMAS = `
import ctypes, mmap, sys, time
libc = ctypes.CDLL(None, use_errno=True)
n = 2000
m = mmap.mmap(-1, n * 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE)
for i in range(0, n, 8): m[i * 4096] = 1
base = ctypes.addressof(ctypes.c_char.from_buffer(m))
for i in range(0, n, 2): libc.mprotect(ctypes.c_void_p(base + i * 4096), 4096, mmap.PROT_READ)
sys.stdout.write('ready\\n'); sys.stdout.flush()
time.sleep(600)
`;

const work = mkdtempSync(join(tmpdir(), 'pv-cli-pipe-'));
const store = join(work, 'store');
let target: ChildProcess;

beforeAll(async () => {
  target = spawn('python3', ['-c', MANY_VMAS], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => createInterface({ input: target.stdout! }).once('line', r));
});

afterAll(() => {
  target?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

describe('pagevault output into a pipe', () => {
  it('writes all of a long --json output to a reader that is slow to start, then exits 0', () => {
    const { pvJson } = cliOn(store);
    const id = pvJson<{ snapshotId: string }[]>('snapshot', String(target.pid!))[0]!.snapshotId;
    // The reader sleeps before reading: the CLI is done long before the pipe is emptied.
    const out = execSync(`node ${CLI} --store ${store} --json show ${id} | (sleep 0.5; cat); exit \${PIPESTATUS[0]}`, { shell: '/bin/bash', encoding: 'utf8', maxBuffer: 64 << 20 });
    expect(out.length).toBeGreaterThan(256 * 1024);
    const m = JSON.parse(out) as { snapshotId: string; vmas: unknown[] };
    expect(m.snapshotId).toBe(id);
    expect(m.vmas.length).toBeGreaterThan(2000);
  });
});
