import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Consistency, FrameType, decodeFrame, newSnapshotId } from '@pagevault/format';
import {
  allThreadsStopped,
  captureGroup,
  captureSnapshot,
  cgroup2Mount,
  checkTargets,
  cgroupDirOf,
  freezeLockDir,
  freezeProcesses,
  frozenCount,
  readPages,
  readThreadStates,
  thawAbandonedFreezes,
} from '@pagevault/capture';
import { cliOn } from '../cli/cli-env';
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

/** A stand-in for the agent (its own node process) holding `pid` frozen mid-capture. */
async function agentFreezing(pid: number): Promise<ChildProcess> {
  const helpers = resolve(__dirname, 'helpers');
  const agent = spawn(
    process.execPath,
    ['--conditions=@pagevault/source', '-r', join(helpers, 'ts-require-hook.js'), join(helpers, 'capture-child.ts'), String(pid)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const line = await new Promise<string>((res, rej) => {
    createInterface({ input: agent.stdout! }).once('line', res);
    agent.once('exit', (code) => rej(new Error(`agent exited early (${code})`)));
  });
  expect(line).toBe('FROZEN');
  return agent;
}

/** The same agent killed with SIGKILL while it holds `pid` frozen: no handler of its runs. Its pid. */
async function agentKilledFreezing(pid: number): Promise<number> {
  const agent = await agentFreezing(pid);
  const exited = new Promise<NodeJS.Signals | null>((res) => agent.once('exit', (_, sig) => res(sig)));
  agent.kill('SIGKILL');
  expect(await exited).toBe('SIGKILL');
  return agent.pid!;
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
    const agent = await agentFreezing(t.info.pid);
    expect(allThreadsStopped(t.info.pid)).toBe(true);
    const exited = new Promise<NodeJS.Signals | null>((res) => agent.once('exit', (_, sig) => res(sig)));
    agent.kill('SIGTERM');
    expect(await exited).toBe('SIGTERM');
    await expectRunning(t);
  });

  it('thaws, at its next freeze, a target whose freezer was killed with SIGKILL (it could thaw nothing)', async () => {
    await agentKilledFreezing(t.info.pid);
    expect(allThreadsStopped(t.info.pid)).toBe(true); // what SIGKILL leaves
    const group = await freezeProcesses([t.info.pid], { method: 'signal' });
    // Taken for "already stopped" it would stay stopped after this freeze too, forever.
    expect(group.how.get(t.info.pid)).toBe('signal');
    group.thaw();
    await expectRunning(t);
  });

  it("thaws with the agent's start-up sweep what a freezer killed with SIGKILL left frozen, and only that", async () => {
    const holder = await agentKilledFreezing(t.info.pid);
    expect(allThreadsStopped(t.info.pid)).toBe(true);
    expect(thawAbandonedFreezes().filter((a) => a.pid === t.info.pid)).toEqual([{ pid: t.info.pid, holder, how: 'signal', outcome: 'thawed' }]);
    await expectRunning(t);
    expect(existsSync(join(freezeLockDir(), `pagevault-freeze-${t.info.pid}.lock`))).toBe(false);
    expect(thawAbandonedFreezes().filter((a) => a.pid === t.info.pid)).toEqual([]);

    // A lock held by a live freezer is its own; a journal naming another process (the pid reused) is not acted on.
    const group = await freezeProcesses([t.info.pid], { method: 'signal' });
    expect(thawAbandonedFreezes().filter((a) => a.pid === t.info.pid)).toEqual([]);
    expect(allThreadsStopped(t.info.pid)).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), 'pv-locks-'));
    writeFileSync(join(dir, `pagevault-freeze-${t.info.pid}.lock`), `${holder}\nsignal 1\n`);
    expect(thawAbandonedFreezes(dir)).toEqual([{ pid: t.info.pid, holder, how: 'signal', outcome: 'reused' }]);
    expect(allThreadsStopped(t.info.pid)).toBe(true);
    rmSync(dir, { recursive: true });
    group.thaw();
    await expectRunning(t);
  });

  it('thaws at the CLI\'s next snapshot, even --live, what a CLI killed with SIGKILL left frozen', async () => {
    const holder = await agentKilledFreezing(t.info.pid);
    expect(allThreadsStopped(t.info.pid)).toBe(true);
    const store = mkdtempSync(join(tmpdir(), 'pv-cli-thaw-'));
    try {
      const r = cliOn(store).pv('snapshot', '--live', String(t.info.pid));
      expect(r.code, r.err).toBe(0);
      expect(r.err).toContain(`pagevault process ${holder} died with process ${t.info.pid} frozen: thawed`);
      await expectRunning(t);
    } finally {
      rmSync(store, { recursive: true, force: true });
    }
  });

  it('does not commit a frozen read during which someone else continued the target (SIGCONT)', async () => {
    const { writer, frames } = collectingWriter((_, i) => {
      if (i === 3) process.kill(t.info.pid, 'SIGCONT'); // another process, in the middle of the read
    });
    await expect(captureSnapshot({ pid: t.info.pid, writer, tenant: 't', host: 'h', freeze: { method: 'signal' } })).rejects.toMatchObject({
      code: 'PV_FREEZE_FAILED',
      message: expect.stringContaining(`process ${t.info.pid} ran during its frozen read (SIGCONT from another process)`),
    });
    const last = decodeFrame(frames.at(-1)!);
    expect(last.body.type).toBe(FrameType.Abort); // never an end: no consumer takes it as complete
    expect(frames.some((f) => decodeFrame(f).body.type === FrameType.SnapshotEnd)).toBe(false);
    await expectRunning(t);
  });

  it('does not commit a frozen read during which someone else continued the target and stopped it again', async () => {
    let restopped = false;
    const { writer, frames } = collectingWriter((_, i) => {
      if (i !== 3) return;
      // Another process continues it and stops it again in the middle of the read: stopped at the end.
      process.kill(t.info.pid, 'SIGCONT');
      const until = Date.now() + 20;
      while (Date.now() < until); // it runs meanwhile (the fixture's threads spin)
      process.kill(t.info.pid, 'SIGSTOP');
      while (!allThreadsStopped(t.info.pid));
      restopped = true;
    });
    await expect(captureSnapshot({ pid: t.info.pid, writer, tenant: 't', host: 'h', freeze: { method: 'signal' } })).rejects.toMatchObject({
      code: 'PV_FREEZE_FAILED',
      message: expect.stringMatching(new RegExp(`process ${t.info.pid} ran during its frozen read \\(thread \\d+ ran \\(\\d+ context switches\\): continued and stopped again by another process\\)`)),
    });
    expect(restopped).toBe(true);
    expect(frames.some((f) => decodeFrame(f).body.type === FrameType.SnapshotEnd)).toBe(false);
    expect(decodeFrame(frames.at(-1)!).body.type).toBe(FrameType.Abort);
    await expectRunning(t); // ours to continue: we stopped it first
  });

  it('commits a frozen read of a target nobody touched, however long it takes', async () => {
    const { writer, frames } = collectingWriter((_, i) => {
      if (i === 3) {
        const until = Date.now() + 50; // a slow sink: the threads stay stopped, their counts unmoved
        while (Date.now() < until);
      }
    });
    await captureSnapshot({ pid: t.info.pid, writer, tenant: 't', host: 'h', freeze: { method: 'signal' } });
    expect(decodeFrame(frames.at(-1)!).body.type).toBe(FrameType.SnapshotEnd);
    await expectRunning(t);
  });

  it('under the cgroup freezer: commits a read during which the target is sent signals (woken in its freezer trap, it runs none of its code), not one during which it was thawed and ran', async (ctx) => {
    const mount = cgroup2Mount();
    if (!mount) return ctx.skip();
    const py = spawn('python3', ['-c', "import signal, sys\nsignal.signal(signal.SIGUSR1, lambda *a: None)\nb = bytearray(8 << 20)\nprint('ready', flush=True)\nwhile True: b[0] = (b[0] + 1) % 256"], { stdio: ['ignore', 'pipe', 'inherit'] });
    const dir = join(mount, `pagevault-test-signals-${process.pid}`);
    try {
      await new Promise((r) => createInterface({ input: py.stdout! }).once('line', r));
      mkdirSync(dir);
      writeFileSync(join(dir, 'cgroup.procs'), String(py.pid));
      const { writer, frames } = collectingWriter((_, i) => {
        if (i === 2) for (let k = 0; k < 3; k++) process.kill(py.pid!, 'SIGUSR1'); // each wakes it once
      });
      const res = await captureSnapshot({ pid: py.pid!, writer, tenant: 't', host: 'h', freeze: { method: 'cgroup' } });
      expect(decodeFrame(frames.at(-1)!).body.type).toBe(FrameType.SnapshotEnd);
      expect(res.stats.freezeMs).toBeGreaterThan(0);

      // Thawed and frozen again by another writer of cgroup.freeze in the middle of the read: frozen at
      // the end, but it ran (its user CPU time moved).
      const thawedOnce = collectingWriter((_, i) => {
        if (i !== 2) return;
        writeFileSync(join(dir, 'cgroup.freeze'), '0');
        const until = Date.now() + 100; // it spins meanwhile: several ticks of user time
        while (Date.now() < until);
        writeFileSync(join(dir, 'cgroup.freeze'), '1');
        while (!/^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8')));
      });
      await expect(captureSnapshot({ pid: py.pid!, writer: thawedOnce.writer, tenant: 't', host: 'h', freeze: { method: 'cgroup' } })).rejects.toMatchObject({
        code: 'PV_FREEZE_FAILED',
        message: expect.stringMatching(/ran \(\d+ ticks of user time\): continued and stopped again by another process/),
      });
      expect(decodeFrame(thawedOnce.frames.at(-1)!).body.type).toBe(FrameType.Abort);
      expect(readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim()).toBe('0');
    } finally {
      py.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 100));
      try {
        rmdirSync(dir);
      } catch {
        // never made
      }
    }
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

      // A cgroup someone else froze is read as it is and left frozen: theirs to thaw.
      writeFileSync(join(dir, 'cgroup.freeze'), '1');
      while (!/^frozen 1$/m.test(readFileSync(join(dir, 'cgroup.events'), 'utf8'))) await sleep(1);
      const c0 = counters(t);
      const theirs = collectingWriter();
      await captureSnapshot({ pid: t.info.pid, writer: theirs.writer, tenant: 't', host: 'h', freeze: { method: 'cgroup' } });
      expect(decodeFrame(theirs.frames.at(-1)!).body.type).toBe(FrameType.SnapshotEnd);
      expect(readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim()).toBe('1');
      expect(readFileSync(join(dir, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
      await sleep(30);
      expect(counters(t)).toEqual(c0); // still not running
      writeFileSync(join(dir, 'cgroup.freeze'), '0');
      await expectRunning(t);

      // A freezer killed with SIGKILL leaves the cgroup frozen; the sweep thaws it.
      const holder = await agentKilledFreezing(t.info.pid);
      expect(readFileSync(join(dir, 'cgroup.events'), 'utf8')).toMatch(/^frozen 1$/m);
      expect(thawAbandonedFreezes().filter((a) => a.pid === t.info.pid)).toEqual([{ pid: t.info.pid, holder, how: 'cgroup', cgroup: dir, outcome: 'thawed' }]);
      expect(readFileSync(join(dir, 'cgroup.freeze'), 'utf8').trim()).toBe('0');
      await expectRunning(t);
    } finally {
      writeFileSync(join(mount, 'cgroup.procs'), String(t.info.pid));
      rmdirSync(dir);
    }
  });
});

describe('a process tree with exited children not yet reaped', () => {
  it('is captured without its zombies (they have no memory), and thawed', async () => {
    // Five children exit at once and are never waited for (zombies); one sleeps.
    const script = "import os, sys, time\nfor _ in range(5):\n    if os.fork() == 0: os._exit(0)\nif os.fork() == 0:\n    time.sleep(60); os._exit(0)\ntime.sleep(0.3)\nsys.stdout.write('ready\\n'); sys.stdout.flush()\nsys.stdin.read()\n";
    const p = spawn('python3', ['-c', script], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((res) => createInterface({ input: p.stdout! }).once('line', () => res()));
      const children = readFileSync(`/proc/${p.pid}/task/${p.pid}/children`, 'utf8').trim().split(' ').map(Number);
      const zombies = children.filter((c) => readThreadStates(c).get(c) === 'Z');
      expect(zombies).toHaveLength(5);
      const sleeper = children.find((c) => !zombies.includes(c))!;
      const res = await captureGroup({
        targets: { tree: p.pid! }, groupId: newSnapshotId(), tenant: 't', host: 'h',
        snapshotFor: () => ({ writer: collectingWriter().writer }),
      });
      expect(res.map((r) => r.pid).sort()).toEqual([p.pid!, sleeper].sort());
      expect(allThreadsStopped(p.pid!)).toBe(false);
      expect(allThreadsStopped(sleeper)).toBe(false);
    } finally {
      p.kill('SIGKILL');
    }
  });
});

describe('a process tree whose root forks short-lived children all the time', () => {
  it('is captured every time, children that exit while being walked or frozen left out', async () => {
    // A forking server: a child every millisecond, each gone 3 ms later, reaped as it goes.
    const dir = mkdtempSync(join(tmpdir(), 'pv-forker-'));
    const src = join(dir, 'forker.c');
    writeFileSync(src, '#include <stdlib.h>\n#include <string.h>\n#include <unistd.h>\n#include <sys/wait.h>\nint main(void){char *m=malloc(8<<20);memset(m,1,8<<20);for(;;){if(fork()==0){usleep(3000);_exit(0);}usleep(1000);while(waitpid(-1,NULL,WNOHANG)>0);}}\n');
    execFileSync('gcc', ['-O1', '-o', join(dir, 'forker'), src]);
    const p = spawn(join(dir, 'forker'), [], { stdio: 'ignore' });
    try {
      await sleep(100);
      for (let i = 0; i < 10; i++) {
        const res = await captureGroup({
          targets: { tree: p.pid! }, groupId: newSnapshotId(), tenant: 't', host: 'h',
          snapshotFor: () => ({ writer: collectingWriter().writer }),
        });
        expect(res[0]!.pid).toBe(p.pid);
        expect(res.length).toBeLessThanOrEqual(6); // the root and the few children alive when it stopped
        expect(allThreadsStopped(p.pid!)).toBe(false);
      }
      expect(frozenCount()).toBe(0);
    } finally {
      p.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a traced process', () => {
  it('is refused a freeze, naming its tracer, and is read --live', async () => {
    const t = await startFixture();
    // gdb attaches (every thread in tracing stop, 't') and holds it until its shell command ends.
    const gdb = spawn('gdb', ['-q', '-nx', '-batch', '-p', String(t.info.pid), '-ex', 'shell sleep 60'], { stdio: 'ignore' });
    try {
      let states: string[] = [];
      for (let i = 0; i < 400 && !(states.length === t.info.threads && states.every((s) => s === 't')); i++) {
        await sleep(25);
        states = [...readThreadStates(t.info.pid).values()];
      }
      expect(states).toEqual(Array(t.info.threads).fill('t'));
      const { writer, frames } = collectingWriter();
      const refused = captureSnapshot({ pid: t.info.pid, writer, tenant: 't', host: 'h' });
      await expect(refused).rejects.toMatchObject({ code: 'PV_FREEZE_FAILED', details: { pid: t.info.pid, tracer: gdb.pid } });
      await expect(refused).rejects.toThrow(/is being traced by process \d+ \(gdb\).*--live/);
      expect(decodeFrame(frames.at(-1)!).body.type).toBe(FrameType.Abort);
      expect(frozenCount()).toBe(0);
      // The up-front check of the CLI and the agent says so before a pre-copy's live rounds, not after.
      expect(() => checkTargets([t.info.pid], { freezing: true })).toThrow(expect.objectContaining({ code: 'PV_FREEZE_FAILED' }));
      expect(() => checkTargets([t.info.pid], { freezing: false })).not.toThrow();
      // --live reads it as it is, marked fuzzy.
      const live = collectingWriter();
      const { stats } = await captureSnapshot({ pid: t.info.pid, writer: live.writer, tenant: 't', host: 'h', consistency: Consistency.Live });
      expect(stats.freezeMs).toBe(0);
      expect(stats.dataPages).toBeGreaterThan(0);
    } finally {
      const gone = new Promise((res) => gdb.once('exit', res));
      gdb.kill('SIGKILL'); // the kernel detaches its tracees, which run on
      await gone;
    }
    try {
      // Nothing of ours stopped it: no SIGSTOP of ours is left pending to stop it once gdb is gone.
      await sleep(100);
      await expectRunning(t);
    } finally {
      await t.stop();
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
