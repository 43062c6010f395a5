import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FrameType, decodeFrame } from '@pagevault/format';
import {
  allThreadsStopped,
  captureSnapshot,
  cgroup2Mount,
  cgroupDirOf,
  freezeProcesses,
  frozenCount,
  readPages,
  readThreadStates,
} from '@pagevault/capture';
import { collectingWriter } from './helpers/frames';
import { addr, startFixture, startTarget, type FixtureInfo, type Target } from './helpers/target-process';

const counters = (t: Target<FixtureInfo>): bigint[] => {
  const page = readPages(t.info.pid, [addr(t.info.counters)]);
  return [0, 1, 2].map((i) => page.readBigUInt64LE(i * 8));
};

/** The target runs: no thread stopped, and every spinning thread's counter moves. */
async function expectRunning(t: Target<FixtureInfo>): Promise<void> {
  expect([...readThreadStates(t.info.pid).values()].filter((s) => s === 'T')).toEqual([]);
  const before = counters(t);
  await sleep(50);
  const after = counters(t);
  for (let i = 0; i < 3; i++) expect(after[i]! > before[i]!).toBe(true);
}

describe('freezing and thawing the target', () => {
  let t: Target<FixtureInfo>;
  beforeEach(async () => {
    t = await startFixture();
  });
  afterEach(async () => {
    await t.stop();
  });

  it('stops every thread during the capture and leaves them running afterwards', async () => {
    let stoppedAtEveryFrame = true;
    const { writer } = collectingWriter(() => {
      stoppedAtEveryFrame &&= allThreadsStopped(t.info.pid);
    });
    await captureSnapshot({ pid: t.info.pid, writer, tenant: 't', host: 'h', freeze: { method: 'signal' } });
    expect(stoppedAtEveryFrame).toBe(true);
    expect(readThreadStates(t.info.pid).size).toBe(t.info.threads);
    expect(frozenCount()).toBe(0);
    await expectRunning(t);
  });

  it('thaws after a failure and aborts the stream with the error', async () => {
    const { writer, frames } = collectingWriter((_, i) => {
      if (i === 4) throw new Error('sink is broken');
    });
    await expect(captureSnapshot({ pid: t.info.pid, writer, tenant: 't', host: 'h' })).rejects.toThrow(
      'sink is broken',
    );
    const last = decodeFrame(frames.at(-1)!);
    expect(last.body.type).toBe(FrameType.Abort);
    expect(last.body.type === FrameType.Abort && last.body.code).toBe('PV_SNAPSHOT_FAILED');
    await expectRunning(t);
  });

  it('leaves a process that was already stopped stopped', async () => {
    process.kill(t.info.pid, 'SIGSTOP');
    while (!allThreadsStopped(t.info.pid)) await sleep(1);
    const { writer } = collectingWriter();
    await captureSnapshot({ pid: t.info.pid, writer, tenant: 't', host: 'h' });
    expect(allThreadsStopped(t.info.pid)).toBe(true);
    process.kill(t.info.pid, 'SIGCONT');
    await expectRunning(t);
  });

  it('leaves stopped a process whose stop was sent just before: its threads still stopping, not ours to continue', async () => {
    // The fixture's three threads spin on both cores: right after kill -STOP some may still run.
    for (let round = 0; round < 30; round++) {
      process.kill(t.info.pid, 'SIGSTOP');
      const group = await freezeProcesses([t.info.pid], { method: 'signal' });
      expect(allThreadsStopped(t.info.pid)).toBe(true); // frozen before it returns, whoever stopped it
      group.thaw();
      expect(group.how.get(t.info.pid), `round ${round}`).toBe('already-stopped');
      expect(allThreadsStopped(t.info.pid), `round ${round}`).toBe(true);
      process.kill(t.info.pid, 'SIGCONT');
      while ([...readThreadStates(t.info.pid).values()].includes('T')) await sleep(1);
    }
    await expectRunning(t);
  });

  it('thaws the target when the agent gets SIGTERM mid-capture', async () => {
    const helpers = resolve(__dirname, 'helpers');
    const agent = spawn(
      process.execPath,
      [
        '--conditions=@pagevault/source',
        '-r',
        join(helpers, 'ts-require-hook.js'),
        join(helpers, 'capture-child.ts'),
        String(t.info.pid),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const line = await new Promise<string>((res, rej) => {
      createInterface({ input: agent.stdout! }).once('line', res);
      agent.once('exit', (code) => rej(new Error(`agent exited early (${code})`)));
    });
    expect(line).toBe('FROZEN');
    expect(allThreadsStopped(t.info.pid)).toBe(true);
    const exited = new Promise<NodeJS.Signals | null>((res) => agent.once('exit', (_, sig) => res(sig)));
    agent.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    await expectRunning(t);
  });

  it('uses the cgroup v2 freezer when the target is alone in its cgroup', async (ctx) => {
    const mount = cgroup2Mount();
    if (!mount) return ctx.skip();
    const dir = join(mount, `pagevault-test-${process.pid}-${t.info.pid}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, 'cgroup.procs'), String(t.info.pid));
    } catch {
      return ctx.skip();
    }
    try {
      expect(cgroupDirOf(t.info.pid)).toBe(dir);
      const group = await freezeProcesses([t.info.pid]);
      expect(group.how.get(t.info.pid)).toBe('cgroup');
      expect(readFileSync(join(dir, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
      const c1 = counters(t);
      await sleep(30);
      expect(counters(t)).toEqual(c1);
      group.thaw();
      await expectRunning(t);

      let frozenAtEveryFrame = true;
      const { writer } = collectingWriter(() => {
        frozenAtEveryFrame &&= /^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'));
      });
      await captureSnapshot({
        pid: t.info.pid,
        writer,
        tenant: 't',
        host: 'h',
        freeze: { method: 'cgroup' },
      });
      expect(frozenAtEveryFrame).toBe(true);
      expect(readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim()).toBe('0');
      await expectRunning(t);
    } finally {
      writeFileSync(join(mount, 'cgroup.procs'), String(t.info.pid));
      rmdirSync(dir);
    }
  });
});

describe('a process that cannot be stopped', () => {
  it('fails with PV_FREEZE_FAILED after the timeout and is not left stopped', async () => {
    const t = await startTarget<{ pid: number }>(['vfork']);
    try {
      let state = '';
      for (let i = 0; i < 200 && state !== 'D'; i++) {
        await sleep(5);
        state = readThreadStates(t.info.pid).get(t.info.pid) ?? '';
      }
      expect(state).toBe('D');
      const { writer } = collectingWriter();
      await expect(
        captureSnapshot({
          pid: t.info.pid,
          writer,
          tenant: 't',
          host: 'h',
          freeze: { method: 'signal', timeoutMs: 200 },
        }),
      ).rejects.toMatchObject({ code: 'PV_FREEZE_FAILED' });
      expect(frozenCount()).toBe(0);
      const children = readFileSync(`/proc/${t.info.pid}/task/${t.info.pid}/children`, 'utf8')
        .trim()
        .split(' ');
      for (const c of children) if (c) process.kill(Number(c), 'SIGKILL');
      await sleep(50);
      expect(readThreadStates(t.info.pid).get(t.info.pid)).not.toBe('T');
    } finally {
      await t.stop();
    }
  });
});
