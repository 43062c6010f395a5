import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { allThreadsStopped } from '@pagevault/capture';
import { ErrorCodes, PvError } from '@pagevault/errors';

/**
 * The demo's target: a real Node.js process holding 48 MiB of buffers — 16 MiB of random bytes, 16 MiB of
 * one repeated 4 KiB page, 16 MiB of zeros (touched) — plus its own heap. On SIGUSR1 it rewrites 1 MiB of
 * the random region and reports it, so the second snapshot has a known change.
 */
const SCRIPT = `
const crypto = require('node:crypto');
const MiB = 1 << 20;
const random = crypto.randomFillSync(Buffer.allocUnsafeSlow(16 * MiB));
const page = crypto.randomFillSync(Buffer.alloc(4096));
const repeated = Buffer.allocUnsafeSlow(16 * MiB);
for (let o = 0; o < repeated.length; o += 4096) page.copy(repeated, o);
const zeros = Buffer.allocUnsafeSlow(16 * MiB).fill(0);
process.on('SIGUSR1', () => { crypto.randomFillSync(random, 0, MiB); process.stdout.write('changed\\n'); });
process.stdout.write('ready\\n');
setInterval(() => [random, repeated, zeros].length, 1 << 30);
`;

export class SampleProcess {
  private constructor(readonly child: ChildProcess) {}

  static async start(): Promise<SampleProcess> {
    const child = spawn(process.execPath, ['-e', SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] });
    const s = new SampleProcess(child);
    await s.waitFor('ready');
    return s;
  }

  get pid(): number {
    return this.child.pid!;
  }

  /**
   * Stops the process so a snapshot and its verification see one memory state, and waits until every
   * thread has stopped: a snapshot that still saw a thread running would take the process for its own to
   * freeze, and continue it afterwards (the demo then failed now and then, its dump taken from a process
   * that had run on).
   */
  async stop(): Promise<void> {
    process.kill(this.pid, 'SIGSTOP');
    const deadline = Date.now() + 5_000;
    while (!allThreadsStopped(this.pid)) {
      if (Date.now() > deadline) throw new PvError(ErrorCodes.FREEZE_FAILED, `sample process ${this.pid} did not stop within 5 s`);
      await new Promise((r) => setTimeout(r, 1));
    }
  }

  cont(): void {
    process.kill(this.pid, 'SIGCONT');
  }

  async change(): Promise<void> {
    const changed = this.waitFor('changed');
    process.kill(this.pid, 'SIGUSR1');
    await changed;
  }

  async kill(): Promise<void> {
    if (this.child.exitCode !== null) return;
    this.child.kill('SIGKILL');
    await once(this.child, 'exit');
  }

  private seen = '';

  /** Waits for a word on the child's stdout without consuming the stream (it is read for the whole run). */
  private waitFor(word: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        this.seen += String(chunk);
        if (!this.seen.includes(word)) return;
        this.seen = '';
        done();
        resolve();
      };
      const onExit = () => {
        done();
        reject(new Error(`sample process exited before "${word}"`));
      };
      const done = () => {
        this.child.stdout!.off('data', onData);
        this.child.off('exit', onExit);
      };
      this.child.stdout!.on('data', onData);
      this.child.once('exit', onExit);
    });
  }
}
