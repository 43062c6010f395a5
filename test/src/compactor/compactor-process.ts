import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { CompactorChildConfig } from './compactor-child';
import { waitFor } from './compactor-env';

/** The test's handle on a compactor child process (compactor-child.ts): its report lines and its exit. */
export class CompactorProcess {
  readonly lines: string[] = [];
  private stderr = '';
  private readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  constructor(config: CompactorChildConfig) {
    this.child = spawn(
      process.execPath,
      ['--conditions=@pagevault/source', '-r', join(__dirname, 'ts-js-resolve-hook.js'), join(__dirname, 'compactor-child.ts'), JSON.stringify(config)],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    createInterface({ input: this.child.stdout! }).on('line', (l) => this.lines.push(l));
    this.child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString('utf8')).slice(-4000)));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Frames the child's CompactionService has handled so far. */
  get framesHandled(): number {
    return this.lines.filter((l) => l.startsWith('FRAMES ')).reduce((n, l) => n + Number(l.slice(7)), 0);
  }

  async waitForLine(match: RegExp, timeoutMs = 60_000): Promise<string> {
    await waitFor(() => this.lines.some((l) => match.test(l)) || this.child.exitCode !== null || this.child.signalCode !== null, timeoutMs, () => `${match} from the compactor child; it said ${JSON.stringify(this.lines)}, stderr ${this.stderr}`);
    const line = this.lines.find((l) => match.test(l));
    if (!line) throw new Error(`compactor child exited (${this.child.exitCode ?? this.child.signalCode}) without ${match}; it said ${JSON.stringify(this.lines)}, stderr: ${this.stderr}`);
    return line;
  }

  async waitForFrames(n: number, timeoutMs = 60_000): Promise<void> {
    await waitFor(() => this.framesHandled >= n, timeoutMs, () => `${n} frames handled by the compactor child (${this.framesHandled} so far; stderr ${this.stderr})`);
  }

  /** Asks for a clean stop (SIGTERM: the service leaves the group) and waits for the exit. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    await this.exited;
  }

  get diagnostics(): string {
    return `lines ${JSON.stringify(this.lines)}; stderr: ${this.stderr}`;
  }
}
