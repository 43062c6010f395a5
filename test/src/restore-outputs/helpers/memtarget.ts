import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { allThreadsStopped } from '@pagevault/capture';

const SOURCE = resolve(__dirname, '../../../fixtures/restore/memtarget.c');
let binary: string | undefined;

/** Compiles test/fixtures/restore/memtarget.c once per test file (with -g, so gdb knows its symbols). */
export function buildMemtarget(): string {
  if (binary) return binary;
  const out = join(mkdtempSync(join(tmpdir(), 'pv-memtarget-')), 'memtarget');
  execFileSync('gcc', ['-O0', '-g', '-Wall', '-pthread', '-o', out, SOURCE], { stdio: 'inherit' });
  binary = out;
  return out;
}

export interface Marker {
  name: string;
  addr: string;
  text: string;
}

export interface Region {
  start: string;
  pages: number;
  prot: 'rw' | 'r';
}

export interface SourceInfo {
  pid: number;
  pageSize: number;
  markers: Marker[];
  regions: Region[];
}

export interface Running<I> {
  proc: ChildProcess;
  info: I;
  /** Closes stdin (the process exits) after continuing it in case it is stopped; waits for the exit. */
  stop(): Promise<void>;
}

/** Starts memtarget with `args` and resolves with the JSON line it prints once its memory is laid out. */
export async function startMemtarget<I>(args: string[]): Promise<Running<I>> {
  const proc = spawn(buildMemtarget(), args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const rl = createInterface({ input: proc.stdout! });
  const line = await new Promise<string>((res, rej) => {
    rl.once('line', res);
    proc.once('exit', (code) => rej(new Error(`memtarget ${args[0]} exited (${code}) before printing its layout`)));
  });
  return {
    proc,
    info: JSON.parse(line) as I,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise<void>((r) => proc.once('exit', () => r()));
      proc.stdin!.end();
      try {
        process.kill(proc.pid!, 'SIGCONT');
      } catch {
        // already gone
      }
      await exited;
    },
  };
}

/** Reads [addr, addr + len) of a process through /proc/PID/mem (root, or a tracer). */
export function readProcessMemory(pid: number, addr: number, len: number): Buffer {
  const fd = openSync(`/proc/${pid}/mem`, 'r');
  try {
    const b = Buffer.alloc(len);
    let done = 0;
    while (done < len) {
      const n = readSync(fd, b, done, len - done, addr + done);
      if (n <= 0) throw new Error(`short read of process ${pid} at 0x${(addr + done).toString(16)}`);
      done += n;
    }
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Stops the process with SIGSTOP and waits until every thread of it is stopped, at most 5 s. */
export async function stopAndWait(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  for (let i = 0; i < 500 && !allThreadsStopped(pid); i++) await new Promise((r) => setTimeout(r, 10));
  if (!allThreadsStopped(pid)) throw new Error(`process ${pid} did not stop within 5 s`);
}
