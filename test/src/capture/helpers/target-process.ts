import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

const SOURCE = resolve(__dirname, '../../../fixtures/target.c');
let binary: string | undefined;

/** Compiles test/fixtures/target.c once per test file into a temp dir. */
export function buildTarget(): string {
  if (binary) return binary;
  const dir = mkdtempSync(join(tmpdir(), 'pv-capture-'));
  const out = join(dir, 'target');
  execFileSync('gcc', ['-O1', '-Wall', '-pthread', '-o', out, SOURCE], { stdio: 'inherit' });
  binary = out;
  return out;
}

export interface Target<I> {
  proc: ChildProcess;
  info: I;
  /** Sends a line to the target's stdin and resolves with the next line it prints. */
  ask(line: string): Promise<string>;
  /** Closes the target's stdin (it exits, killing its child) and waits for it. */
  stop(): Promise<void>;
}

/** Starts the target and resolves with the JSON line it prints once its memory is laid out. */
export async function startTarget<I>(args: string[]): Promise<Target<I>> {
  const proc = spawn(buildTarget(), args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const rl = createInterface({ input: proc.stdout! });
  const nextLine = () =>
    new Promise<string>((res, rej) => {
      rl.once('line', res);
      proc.once('exit', (code) => rej(new Error(`target exited (${code}) instead of printing a line`)));
    });
  const info = JSON.parse(await nextLine()) as I;
  return {
    proc,
    info,
    ask: (line) => {
      const answer = nextLine();
      proc.stdin!.write(line + '\n');
      return answer;
    },
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((res) => proc.once('exit', () => res()));
      proc.stdin!.end();
      // A stopped target cannot read EOF: continue it first in case a test left it stopped.
      try {
        process.kill(proc.pid!, 'SIGCONT');
      } catch {
        // already gone
      }
      await exited;
    },
  };
}

export interface FixtureInfo {
  pid: number;
  child: number;
  pageSize: number;
  marker: string;
  zero: string;
  untouched: string;
  file: string;
  filePath: string;
  shared: string;
  memfd1: string;
  memfd2: string;
  protnone: string;
  counters: string;
  threads: number;
}

export interface BigInfo {
  pid: number;
  child: number;
  pageSize: number;
  addr: string;
  bytes: number;
}

export const addr = (hex: string): number => parseInt(hex, 16);

/** Starts the "fixture" target (every kind of region; see target.c). */
export function startFixture(): Promise<Target<FixtureInfo>> {
  const dir = mkdtempSync(join(tmpdir(), 'pv-fixture-'));
  return startTarget<FixtureInfo>(['fixture', dir]);
}
