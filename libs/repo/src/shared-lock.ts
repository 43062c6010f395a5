import { HeldLock, pause, type LockSettings } from './held-lock';
import { pruneGeneration, scanLocks, withoutDeadHolders, type LockEntry } from './lock-scan';
import type { TenantStore } from './tenant-store';

export interface LockWait {
  /** Called after each look that found an exclusive lock, before waiting again: heartbeats, timers. */
  onWait?: (holders: LockEntry[]) => void | Promise<void>;
  /** Stops waiting (the acquisition throws the signal's reason). */
  signal?: AbortSignal;
}

/** One snapshot's share of the tenant's shared lock. */
export interface SharedHold {
  /** Throws PV_LOCK_LOST (retriable) if the lock may have gone stale while held: commit nothing. */
  assertHeld(): void;
  /** Gives the share back; the last one out deletes the lock object. Never rejects. */
  release(): Promise<void>;
}

interface Entry {
  lock: HeldLock;
  refs: number;
}

/**
 * The shared lock of one tenant in this process: snapshots ingested at the same time share one lock
 * object (refcounted), written when the first begins and deleted when the last ends. Taking it is a PUT
 * and a LIST; while a live exclusive lock (a prune) is listed, the PUT is undone and the taker waits,
 * looking again with backoff. A share taken while the object is held costs no request and never waits,
 * so a snapshot beginning cannot block the frames of another that holds the lock (no deadlock).
 *
 * The same LIST carries the prune generation: if a prune deleted anything since the tenant's page index
 * was loaded, the index is rebuilt and the map nodes it knew forgotten before anything deduplicates
 * against them.
 */
export class SharedLock {
  private current: Entry | undefined;
  private taking: Promise<Entry> | undefined;

  constructor(
    private readonly t: TenantStore,
    private readonly s: LockSettings,
  ) {}

  async acquire(w: LockWait = {}): Promise<SharedHold> {
    for (;;) {
      w.signal?.throwIfAborted();
      const c = this.current;
      if (c && !c.lock.isLost) {
        c.refs++;
        return this.hold(c);
      }
      if (c) {
        // Lost while held: a prune may have run meanwhile. The next lock starts from a fresh index.
        this.current = undefined;
        this.t.forgetGeneration();
      }
      if (this.taking) {
        await this.taking.catch(() => undefined); // its taker's failure is not ours: look again
        continue;
      }
      this.taking = this.take(w);
      try {
        // The taker's share is granted with the lock, before anything can abort it: a lock object taken
        // and then left with no share would be kept alive by nobody's release.
        const taken = await this.taking;
        this.current = taken;
        taken.refs++;
        return this.hold(taken);
      } finally {
        this.taking = undefined;
      }
    }
  }

  private async take(w: LockWait): Promise<Entry> {
    const { store, tenant } = this.t;
    for (let wait = 100; ; wait = Math.min(2 * wait, 2000)) {
      const lock = await HeldLock.take(store, tenant, 'shared', this.s);
      try {
        const scan = await scanLocks(store, tenant, this.s.staleMs);
        const exclusive = await withoutDeadHolders(store, scan.live.filter((l) => l.kind === 'exclusive'));
        if (exclusive.length === 0) {
          await this.t.matchGeneration(pruneGeneration(scan));
          return { lock, refs: 0 };
        }
        await lock.release();
        await w.onWait?.(exclusive);
      } catch (e) {
        await lock.release();
        throw e;
      }
      await pause(wait, w.signal);
    }
  }

  private hold(c: Entry): SharedHold {
    let done = false;
    return {
      assertHeld: () => c.lock.assertHeld(),
      release: async () => {
        if (done) return;
        done = true;
        if (--c.refs > 0) return;
        if (this.current === c) this.current = undefined; // a new share now takes a new lock
        await this.t.idle(); // uploads begun under the lock end under it
        await c.lock.release();
      },
    };
  }
}
