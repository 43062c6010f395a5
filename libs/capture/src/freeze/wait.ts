import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Polls `done` with a growing interval (0.5 ms up to 10 ms) until it returns true or `timeoutMs` passes.
 * Returns whether it became true. Polling /proc is how stop states are observed: there is no event for it.
 */
export async function pollUntil(done: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let delay = 0.5;
  for (;;) {
    if (done()) return true;
    if (Date.now() >= deadline) return done();
    await sleep(delay);
    delay = Math.min(delay * 2, 10);
  }
}
