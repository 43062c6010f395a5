import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Consistency, FrameType, decodeFrame } from '@pagevault/format';
import { PagemapReader, captureSnapshot, freezeProcesses, frozenCount } from '@pagevault/capture';
import { collectingWriter, decodeSnapshot } from './helpers/frames';
import { startTarget, type BigInfo } from './helpers/target-process';

function unusedPid(): number {
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let p = max - 1; p > 1; p--) {
    try {
      readFileSync(`/proc/${p}/stat`);
    } catch {
      return p;
    }
  }
  throw new Error('no free pid');
}

describe('capture errors', () => {
  it('fails with PV_NO_SUCH_PROCESS for a pid that does not exist, and aborts the stream', async () => {
    const pid = unusedPid();
    const { writer, frames, snapshotId } = collectingWriter();
    await expect(captureSnapshot({ pid, writer, tenant: 't', host: 'h' })).rejects.toMatchObject({
      code: 'PV_NO_SUCH_PROCESS',
      message: expect.stringContaining(String(pid)),
    });
    const s = decodeSnapshot(frames, snapshotId);
    expect(s.state).toBe('abort');
    expect(s.abort!.code).toBe('PV_NO_SUCH_PROCESS');
  });

  it('fails with PV_PROCESS_EXITED naming the pid when the target is killed mid-capture', async () => {
    const t = await startTarget<BigInfo>(['big', '32']);
    try {
      const { writer, frames } = collectingWriter();
      let batches = 0;
      const run = captureSnapshot({
        pid: t.info.pid,
        writer,
        tenant: 't',
        host: 'h',
        batchPages: 64,
        drain: async () => {
          if (++batches !== 3) return;
          process.kill(t.info.pid, 'SIGKILL');
          // Wait until the kernel has torn down its memory (zombie or reaped).
          for (let i = 0; i < 200; i++) {
            let stat = '';
            try {
              stat = readFileSync(`/proc/${t.info.pid}/stat`, 'utf8');
            } catch {
              return;
            }
            if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') return;
            await sleep(5);
          }
        },
      });
      await expect(run).rejects.toMatchObject({
        code: 'PV_PROCESS_EXITED',
        message: expect.stringContaining(String(t.info.pid)),
      });
      const last = decodeFrame(frames.at(-1)!);
      expect(last.body.type).toBe(FrameType.Abort);
      expect(last.body.type === FrameType.Abort && last.body.code).toBe('PV_PROCESS_EXITED');
      expect(frozenCount()).toBe(0);
    } finally {
      await t.stop();
    }
  });

  it('fails with PV_PROCESS_EXITED saying so when the process runs execve under a live read', async () => {
    // The process execs when told: its pagemap, opened on the old address space, then reads nothing.
    const p = spawn('python3', ['-c', "import os, sys; sys.stdin.readline(); os.execv('/bin/sleep', ['sleep', '30'])"], { stdio: ['pipe', 'ignore', 'inherit'] });
    try {
      await sleep(200);
      const pagemap = new PagemapReader(p.pid!, 4096, 16);
      const heap = Number.parseInt(readFileSync(`/proc/${p.pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith('[heap]'))!.split('-')[0]!, 16);
      pagemap.read(heap, 1); // the old address space: read
      p.stdin!.write('exec\n');
      for (let i = 0; i < 200 && readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim() !== 'sleep'; i++) await sleep(10);
      expect(() => pagemap.read(heap, 1)).toThrow(expect.objectContaining({
        code: 'PV_PROCESS_EXITED',
        message: expect.stringMatching(new RegExp(`^process ${p.pid} replaced its program \\(execve\\) during the capture`)),
      }));
      pagemap.close();
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('says a process killed under a live read exited, also while its memory is still being torn down (not yet a zombie)', async () => {
    // 512 MiB touched: the kernel takes a while to free it after SIGKILL, and pagemap reads nothing from the start.
    const p = spawn('python3', ['-c', "import sys; b = bytearray(512 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\nprint('ready', flush=True); sys.stdin.read()"], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      await new Promise((r) => p.stdout!.once('data', r));
      const pagemap = new PagemapReader(p.pid!, 4096, 16);
      const heap = Number.parseInt(readFileSync(`/proc/${p.pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith('[heap]'))!.split('-')[0]!, 16);
      pagemap.read(heap, 1);
      p.kill('SIGKILL');
      let error: unknown;
      for (let i = 0; i < 100_000 && error === undefined; i++) {
        try {
          pagemap.read(heap, 1);
        } catch (e) {
          error = e;
        }
      }
      expect(error).toMatchObject({ code: 'PV_PROCESS_EXITED', message: expect.stringMatching(new RegExp(`^process ${p.pid} exited during capture`)) });
      pagemap.close();
    } finally {
      p.kill('SIGKILL');
    }
  });

  it('rejects bad options before touching the process', async () => {
    const { writer } = collectingWriter();
    await expect(captureSnapshot({ pid: -3, writer, tenant: 't', host: 'h' })).rejects.toMatchObject({
      code: 'PV_INVALID_ARGUMENT',
    });
    await expect(
      captureSnapshot({ pid: process.pid, writer: collectingWriter().writer, tenant: 't', host: 'h' }),
    ).rejects.toMatchObject({
      code: 'PV_INVALID_ARGUMENT',
    });
  });

  it('refuses a kernel thread at once: it has no user memory (it used to wait out the freeze timeout)', async () => {
    // PF_KTHREAD in the flags field of /proc/PID/stat; kthreadd (pid 2) and its children on a host.
    const kthread = readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).find((pid) => {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        return (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]) & 0x00200000) !== 0;
      } catch {
        return false;
      }
    });
    expect(kthread, 'no kernel thread is visible in this pid namespace').toBeDefined();
    const t0 = Date.now();
    for (const live of [false, true]) {
      await expect(captureSnapshot({ pid: kthread!, writer: collectingWriter().writer, tenant: 't', host: 'h', ...(live ? { consistency: Consistency.Live } : {}) })).rejects.toMatchObject({
        code: 'PV_INVALID_ARGUMENT',
        message: expect.stringContaining('kernel thread'),
      });
    }
    expect(Date.now() - t0).toBeLessThan(4_000); // not the 5 s freeze timeout
    expect(frozenCount()).toBe(0);
  });

  it('refuses a group that lists a pid twice, freezing nothing', async () => {
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      const pid = sleeper.pid!;
      const frozen = freezeProcesses([pid, pid]);
      await expect(frozen).rejects.toMatchObject({ code: 'PV_INVALID_ARGUMENT', message: `pid ${pid} is listed twice` });
      (await frozen.catch(() => undefined))?.thaw(); // were it frozen after all, the test still ends
      expect(frozenCount()).toBe(0);
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).not.toMatch(/^\d+ \(.*\) T/);
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('refuses to SIGSTOP-freeze pid 1 at once: the init of this pid namespace ignores SIGSTOP', async () => {
    await expect(freezeProcesses([1], { method: 'signal', timeoutMs: 30_000 })).rejects.toMatchObject({
      code: 'PV_FREEZE_FAILED',
      message: expect.stringContaining('init of this pid namespace'),
    });
    expect(frozenCount()).toBe(0);
  });
});
