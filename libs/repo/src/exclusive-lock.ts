import { ErrorCodes, PvError } from '@pagevault/errors';
import type { ObjectStore } from '@pagevault/objstore';
import { HeldLock, lockSettings, pause, type LockOptions } from './held-lock';
import { describeLocks, scanLocks, withoutDeadHolders, type LockEntry, type LockScan } from './lock-scan';

export interface ExclusiveOptions extends LockOptions {
  /** Keep trying this long while other locks are live (default 0: fail at once with PV_REPO_LOCKED). */
  waitMs?: number;
  /**
   * While waiting, keep our lock at most this long at a time, so that no new snapshot starts and those
   * being ingested drain; then step aside as long, so that compactors are never stalled for good by a
   * prune that cannot get in (default 60 s).
   */
  holdMs?: number;
  /** Called when other locks are found, with them (at most once a poll). */
  onWait?: (holders: LockEntry[]) => void | Promise<void>;
}

/**
 * Takes the tenant for ourselves (prune): PUT our lock, then LIST. Any other live lock and we do not
 * proceed. Since both sides write before they list, of a prune and a snapshot starting together at
 * least one sees the other: never both proceed. Waiting (waitMs > 0) we keep our lock, which makes new
 * snapshots wait, while those already ingested finish — except when an older exclusive lock is listed
 * (another prune), to which we yield at once, so that two prunes never keep each other out.
 * Returns the lock, the LIST that granted it (its stale locks, its prune generation), and how many locks
 * of holders that died on this host it deleted on the way.
 */
export async function lockExclusive(store: ObjectStore, tenant: string, o: ExclusiveOptions = {}): Promise<{ lock: HeldLock; scan: LockScan; deadHolders: number }> {
  const s = lockSettings(o);
  const { waitMs = 0, holdMs = 60_000 } = o;
  if (!(waitMs >= 0) || !(holdMs > 0)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `lock wait ${waitMs} ms must be >= 0 and hold ${holdMs} ms > 0`);
  const deadline = Date.now() + waitMs;
  let deadHolders = 0;
  for (;;) {
    const lock = await HeldLock.take(store, tenant, 'exclusive', s);
    const holdUntil = Math.min(deadline, Date.now() + holdMs);
    let others: LockEntry[] = [];
    let olderExclusive = false;
    try {
      for (let wait = 250; ; wait = Math.min(2 * wait, 2000)) {
        const scan = await scanLocks(store, tenant, s.staleMs);
        const live = scan.live.filter((l) => l.key !== lock.key);
        others = await withoutDeadHolders(store, live);
        deadHolders += live.length - others.length;
        if (others.length === 0) return { lock, scan, deadHolders };
        olderExclusive = others.some((l) => l.kind === 'exclusive' && l.id < lock.id);
        if (olderExclusive || Date.now() + wait > holdUntil) break;
        await o.onWait?.(others);
        await pause(wait);
      }
    } catch (e) {
      await lock.release();
      throw e;
    }
    await lock.release();
    if (Date.now() >= deadline) throw await locked(store, tenant, others, waitMs, s.staleMs);
    await o.onWait?.(others);
    await pause(Math.min(deadline - Date.now(), olderExclusive ? 500 + Math.random() * 1000 : holdMs));
  }
}

async function locked(store: ObjectStore, tenant: string, others: LockEntry[], waitMs: number, staleMs: number): Promise<PvError> {
  const held = await describeLocks(store, others);
  const waited = waitMs > 0 ? ` (waited ${Math.round(waitMs / 1000)} s)` : '';
  return new PvError(
    ErrorCodes.REPO_LOCKED,
    `tenant ${tenant} in ${store.description} is locked${waited}: ${held.join('; ')}. A shared lock is a snapshot being ingested ` +
      `(a compactor, or \`pagevault snapshot\`); an exclusive one, a prune. Retry later or wait for it; the lock of a holder that died is ignored once not rewritten for ${staleMs >= 120_000 ? `${Math.round(staleMs / 60_000)} min` : `${Math.round(staleMs / 1000)} s`}`,
    { retriable: true, details: { tenant, locks: others.map((l) => l.key) } },
  );
}
