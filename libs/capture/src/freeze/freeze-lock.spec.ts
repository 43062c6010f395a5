import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { lockFreeze } from './freeze-lock';

describe('lockFreeze', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'pv-freeze-lock-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('lets one freeze of a pid in at a time: the next waits until the first releases, and none is left behind', async () => {
    const first = await lockFreeze([42, 7], 1_000, dir);
    let second: Awaited<ReturnType<typeof lockFreeze>> | undefined;
    const waiting = lockFreeze([7], 5_000, dir).then((l) => (second = l));
    await new Promise((r) => setTimeout(r, 50));
    expect(second).toBeUndefined();
    first.thaw();
    first.thaw(); // idempotent
    await waiting;
    expect(second).toBeDefined();
    expect(existsSync(join(dir, 'pagevault-freeze-42.lock'))).toBe(false);
    second!.thaw();
    expect(existsSync(join(dir, 'pagevault-freeze-7.lock'))).toBe(false);
  });

  it('gives up after its timeout with a retriable PV_FREEZE_FAILED naming the pid, holding nothing', async () => {
    const held = await lockFreeze([9], 1_000, dir);
    const e = await lockFreeze([8, 9], 100, dir).catch((err: unknown) => err);
    expect(e).toMatchObject({ code: ErrorCodes.FREEZE_FAILED, retriable: true, details: { pid: 9 } });
    (await lockFreeze([8], 100, dir)).thaw(); // 8 was released when 9 could not be had
    held.thaw();
  });

  it('is free again once a holder dies without releasing (the kernel drops its lock)', async () => {
    // flock(1) holds the same kind of lock on the same file, as another process of the host would (-o:
    // it alone holds it, not the command it runs).
    const holder = spawn('flock', ['-o', join(dir, 'pagevault-freeze-5.lock'), 'sh', '-c', 'echo held; exec sleep 1000'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    await new Promise<void>((r) => holder.stdout!.once('data', () => r()));
    await expect(lockFreeze([5], 100, dir)).rejects.toMatchObject({ code: ErrorCodes.FREEZE_FAILED });
    const exited = new Promise((r) => holder.once('exit', r));
    process.kill(-holder.pid!, 'SIGKILL');
    await exited;
    (await lockFreeze([5], 1_000, dir)).thaw();
  });
});
