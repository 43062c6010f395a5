import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCodes, PvError } from '@pagevault/errors';
import type { ObjectStore } from '@pagevault/objstore';
import { keys } from './keys';
import { ownIdentity, type LockKind, type LockRecord } from './lock-scan';

export interface LockOptions {
  /**
   * A lock not rewritten for this long is stale: ignored by everyone, deleted by prune (default 10 min).
   * Holders rewrite theirs every staleMs / 4. Every process on a repository MUST use the same value.
   */
  staleMs?: number;
  /** Recorded in the lock for messages (default: this host, this process). */
  host?: string;
  pid?: number;
}

export type LockSettings = Required<LockOptions>;

export function lockSettings(o: LockOptions = {}): LockSettings {
  const staleMs = o.staleMs ?? 10 * 60_000;
  if (!(staleMs > 0)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `lock staleMs ${staleMs} must be > 0`);
  return { staleMs, host: o.host ?? hostname(), pid: o.pid ?? process.pid };
}

/** Sorts by creation time (ms in base 36, fixed width), then at random: the older of two locks has the smaller id. */
export function newLockId(): string {
  return Date.now().toString(36).padStart(9, '0') + randomBytes(6).toString('hex');
}

/**
 * One lock object this process wrote and keeps alive: rewritten every staleMs / 4 until released.
 * Others judge it by its age in a listing, so it protects us only while it is rewritten: once no write
 * has succeeded for staleMs / 2 (half the staleness, left for clocks that disagree), the lock is lost for
 * good and assertHeld throws PV_LOCK_LOST (retriable): work that relied on it must not be committed.
 */
export class HeldLock {
  readonly key: string;
  readonly id: string;
  private okAt: number;
  private lost: PvError | undefined;
  private released = false;
  private writing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly store: ObjectStore,
    private readonly record: LockRecord,
    tenant: string,
    private readonly staleMs: number,
  ) {
    this.id = record.id;
    this.key = keys.lock(tenant, `${record.kind}-${record.id}`);
    this.okAt = Date.now();
  }

  /** Writes a new lock object (one PUT) and starts rewriting it. */
  static async take(store: ObjectStore, tenant: string, kind: LockKind, s: LockSettings): Promise<HeldLock> {
    const now = Date.now();
    const holder = s.pid === process.pid ? ownIdentity() : undefined;
    const record: LockRecord = { kind, id: newLockId(), host: s.host, pid: s.pid, createdMs: now, refreshedMs: now, ...(holder ? { holder } : {}) };
    const l = new HeldLock(store, record, tenant, s.staleMs);
    await l.write();
    l.timer = setInterval(() => void l.refresh(), s.staleMs / 4);
    l.timer.unref();
    return l;
  }

  get isLost(): boolean {
    this.check();
    return this.lost !== undefined;
  }

  /** Throws PV_LOCK_LOST (retriable) once the lock may have looked stale to others. No request. */
  assertHeld(): void {
    this.check();
    if (this.lost) throw this.lost;
  }

  /**
   * Deletes the lock object after any rewrite in flight (which would otherwise bring it back). A failed
   * delete is not an error: the object goes stale and is ignored after staleMs.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    await this.writing;
    await this.store.delete(this.key).catch(() => undefined);
  }

  private check(now = Date.now()): void {
    if (this.lost || this.released || now - this.okAt <= this.staleMs / 2) return;
    this.lost = new PvError(
      ErrorCodes.LOCK_LOST,
      `lock ${this.key} was not rewritten for ${Math.round((now - this.okAt) / 1000)} s (others ignore a lock after ${Math.round(this.staleMs / 1000)} s): ` +
        'another process may have taken the tenant meanwhile, so nothing done under it is committed',
      { retriable: true, details: { key: this.key } },
    );
    clearInterval(this.timer);
  }

  private async refresh(): Promise<void> {
    if (this.writing || this.released) return;
    this.check();
    if (this.lost) return;
    // A failed rewrite is retried at the next tick; too many in a row and the lock is lost.
    this.writing = this.write().catch(() => undefined).finally(() => (this.writing = undefined));
    await this.writing;
  }

  private async write(): Promise<void> {
    const start = Date.now();
    await this.store.put(this.key, Buffer.from(JSON.stringify({ ...this.record, refreshedMs: start })));
    this.check(); // a write that took too long cannot bridge the gap behind it
    if (!this.lost) this.okAt = start;
  }
}

/** Waits `ms`, or throws at once when `signal` is aborted (its reason). */
export async function pause(ms: number, signal?: AbortSignal): Promise<void> {
  await sleep(ms, undefined, signal ? { signal } : undefined);
}
