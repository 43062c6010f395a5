import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, PvError } from '@pagevault/errors';
import type { ObjectInfo, ObjectStore } from './object-store.js';

export interface RetryEvent {
  operation: string;
  key: string;
  /** The attempt that failed, from 1. */
  attempt: number;
  delayMs: number;
  error: unknown;
}

export interface RetryOptions {
  /** Total tries per operation, including the first (1 = no retries). */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * No retry starts this long after an operation's first attempt (a listing's last progress): a store
   * that hangs fails its callers in bounded time, whatever the attempts left. Default: no bound.
   */
  giveUpAfterMs?: number;
  onRetry?: (event: RetryEvent) => void;
}

/**
 * Retries operations that fail with a `retriable` error, with exponential backoff and jitter;
 * anything else (not found, permission denied, store full, bad keys) fails at once. Every
 * operation of the port is safe to repeat: puts are whole-object and idempotent, deletes of a
 * missing key succeed.
 */
export class RetryingObjectStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly inner: ObjectStore,
    private readonly options: RetryOptions,
  ) {
    const { attempts, baseDelayMs, maxDelayMs } = options;
    if (!Number.isInteger(attempts) || attempts < 1 || !(baseDelayMs >= 0) || !(maxDelayMs >= baseDelayMs)) {
      throw new PvError(
        ErrorCodes.INVALID_ARGUMENT,
        `invalid retry options: attempts ${attempts} (integer >= 1), baseDelayMs ${baseDelayMs} (>= 0), ` +
          `maxDelayMs ${maxDelayMs} (>= baseDelayMs)`,
      );
    }
    this.description = inner.description;
  }

  put(key: string, body: Uint8Array, sha256?: string): Promise<void> {
    return this.retry('put', key, () => this.inner.put(key, body, sha256));
  }
  get(key: string): Promise<Buffer> {
    return this.retry('get', key, () => this.inner.get(key));
  }
  getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.retry('getRange', key, () => this.inner.getRange(key, offset, length, into));
  }
  head(key: string): Promise<ObjectInfo | undefined> {
    return this.retry('head', key, () => this.inner.head(key));
  }
  delete(key: string): Promise<void> {
    return this.retry('delete', key, () => this.inner.delete(key));
  }

  /** A failed listing restarts and skips what it already yielded (keys come in order). */
  async *list(prefix: string): AsyncGenerator<ObjectInfo> {
    let last: string | undefined;
    let failures = 0;
    let since = performance.now();
    for (;;) {
      try {
        for await (const info of this.inner.list(prefix)) {
          if (last !== undefined && info.key <= last) continue;
          last = info.key;
          failures = 0; // progress: a long listing may survive many separate hiccups
          since = performance.now();
          yield info;
        }
        return;
      } catch (e) {
        failures += 1;
        await this.backoff('list', prefix, failures, e, since);
      }
    }
  }

  private async retry<T>(operation: string, key: string, run: () => Promise<T>): Promise<T> {
    const since = performance.now();
    for (let attempt = 1; ; attempt++) {
      try {
        return await run();
      } catch (e) {
        await this.backoff(operation, key, attempt, e, since);
      }
    }
  }

  /** Rethrows `error` unless it is retriable and attempts and time remain; otherwise waits. */
  private async backoff(operation: string, key: string, attempt: number, error: unknown, since: number): Promise<void> {
    if (!isRetriable(error) || attempt >= this.options.attempts) throw error;
    if (this.options.giveUpAfterMs !== undefined && performance.now() - since >= this.options.giveUpAfterMs) throw error;
    const { baseDelayMs, maxDelayMs, onRetry } = this.options;
    const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    // "Equal jitter": at least half the backoff, so clients that failed together spread out.
    const delayMs = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    onRetry?.({ operation, key, attempt, delayMs, error });
    await sleep(delayMs);
  }
}

function isRetriable(e: unknown): boolean {
  return typeof e === 'object' && e !== null && (e as { retriable?: unknown }).retriable === true;
}
