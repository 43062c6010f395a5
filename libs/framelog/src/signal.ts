/**
 * A wake-up for loops that wait for "something changed". Waiters pass the version they last saw, so a
 * change between looking and waiting is never missed.
 */
export class Signal {
  private current = 0;
  private waiters: Array<() => void> = [];

  get version(): number {
    return this.current;
  }

  notify(): void {
    this.current++;
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves at the first notify() after `since` was read (at once if it already happened). */
  changedSince(since: number): Promise<void> {
    if (since !== this.current) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
