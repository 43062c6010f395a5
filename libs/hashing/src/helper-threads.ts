import type { Worker } from 'node:worker_threads';

/**
 * Helper threads (the page hasher's, the frame sealer's) load koffi and a native library as they start.
 * A process that exits while one is still loading dies: koffi's module init throws into a worker
 * environment Node is tearing down, and Node makes that a fatal error (SIGABRT). Short CLI commands hit
 * it: `pagevault dump` of a small process aborted about 1 run in 75, its frame sealer ~35 ms into its boot.
 * So each helper sets its word of a shared block once loaded, registers here, and settleHelperThreads()
 * waits for every one still loading before a process exits.
 */
interface Booting {
  flag: Int32Array;
  index: number;
  gone: boolean;
}

const booting = new Set<Booting>();

/** Tracks worker until it sets flag[index] to non-zero (loaded) or exits. */
export function watchHelperBoot(worker: Worker, flag: Int32Array, index: number): void {
  const b: Booting = { flag, index, gone: false };
  booting.add(b);
  worker.once('exit', () => (b.gone = true));
}

/** Helper threads started and still loading their libraries. */
export function helperThreadsStarting(): number {
  for (const b of booting) if (b.gone || Atomics.load(b.flag, b.index) !== 0) booting.delete(b);
  return booting.size;
}

/** Resolves once no helper thread is still loading (at most timeoutMs): call before process.exit. */
export async function settleHelperThreads(timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (helperThreadsStarting() > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
}
