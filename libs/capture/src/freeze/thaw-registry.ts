/** Something frozen by this process that must be thawed before it exits. */
export interface Thawable {
  /** Synchronous and idempotent: a signal handler or an 'exit' listener can only run synchronous code. */
  thaw(): void;
  /**
   * While on, thaw() leaves the targets stopped (SIGSTOP) instead of running: a live restore that has
   * begun writing a target must not let it run half restored, whatever ends the restore.
   */
  stopInsteadOfThaw?(on: boolean): void;
}

/** Pids a thaw left stopped (stopInsteadOfThaw), for a dying process to name. */
export const leftStopped = new Set<number>();

// Process-wide on purpose: a frozen target outlives any one capture call if the agent is killed, so
// whoever handles the agent's death must find every frozen target in one place.
const frozen = new Set<Thawable>();

export function registerFrozen(t: Thawable): void {
  frozen.add(t);
}

export function unregisterFrozen(t: Thawable): void {
  frozen.delete(t);
}

/** Targets currently frozen by this process. */
export function frozenCount(): number {
  return frozen.size;
}

/**
 * Thaws everything this process froze, last registered first (a freeze lock, registered before the
 * targets it covers, goes after them); never throws (each target is tried even if another fails).
 */
export function thawAllFrozen(): void {
  for (const t of [...frozen].reverse()) {
    try {
      t.thaw();
    } catch {
      // Best effort: the target may already be gone.
    }
    frozen.delete(t);
  }
}

type Sig = 'SIGTERM' | 'SIGINT' | 'SIGHUP';
let installed: (() => void) | undefined;

/**
 * Makes SIGTERM and SIGINT (and process exit) thaw every frozen target first. When no one else listens
 * for the signal, the handler then re-raises it so the process dies of it as it would have (after
 * `dying`, a last word such as a line on stderr, written synchronously); when other listeners exist (an
 * app's graceful shutdown), they decide when to exit. Idempotent; returns an uninstaller.
 */
export function installThawOnSignals(signals: readonly Sig[] = ['SIGTERM', 'SIGINT'], dying?: (sig: Sig) => void): () => void {
  if (installed) return installed;
  const handlers = signals.map((sig) => {
    const h = (): void => {
      thawAllFrozen();
      if (process.listenerCount(sig) === 1) {
        process.removeListener(sig, h);
        try {
          dying?.(sig);
        } finally {
          process.kill(process.pid, sig);
        }
      }
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  process.on('exit', thawAllFrozen);
  installed = () => {
    for (const [sig, h] of handlers) process.removeListener(sig, h);
    process.removeListener('exit', thawAllFrozen);
    installed = undefined;
  };
  return installed;
}
