import { ErrorCodes, PvError } from '@pagevault/errors';
import type { ObjectStore } from '@pagevault/objstore';
import { checkTenant, keys } from './keys';
import { pageHasher, type PageHasher } from '@pagevault/hashing';
import { lockSettings, type LockOptions, type LockSettings } from './held-lock';
import { SharedLock, type LockWait, type SharedHold } from './shared-lock';
import { RecentMaps } from './recent-maps';
import { RecentPages } from './recent-pages';
import { TenantStore, packOptions, type PackOptions, type RepoOptions } from './tenant-store';

export interface RepositoryOptions extends RepoOptions {
  /** Lock staleness and the holder recorded in lock objects (held-lock.ts). */
  locks?: LockOptions;
  /**
   * Keep at most this many tenants' stores open, the least recently used closed first (never one this
   * process has ingested into). Default: every tenant opened stays open. A read-only service sets it:
   * every tenant name a client tries would otherwise hold memory for as long as the process lives.
   */
  maxOpenTenants?: number;
  /** Told when a tenant opens with damaged index files left out (TenantStore.damagedIndexes): a service logs them. */
  onDamagedIndex?: (tenant: string, damaged: PvError[]) => void;
}

/**
 * The repository over one object store: a TenantStore per tenant, created on first use with its page
 * index loaded from the store. Tenants never share pages (the dedup scope is the tenant).
 */
export class Repository {
  private readonly tenants = new Map<string, Promise<TenantStore>>();
  private readonly written = { packs: 0 };
  private readonly shared = new Map<TenantStore, SharedLock>();
  private readonly opts: PackOptions;
  private readonly hasher: PageHasher;
  /** Recently stored pages of every tenant, by hash (recent-pages.ts): taken at the first new page. */
  private recent: RecentPages | undefined;
  /** Page maps of the VMAs ingested last, by root (recent-maps.ts): where incrementals find their parent's. */
  readonly recentMaps: RecentMaps;
  readonly locks: LockSettings;
  private readonly maxOpenTenants: number;
  private readonly onDamagedIndex: ((tenant: string, damaged: PvError[]) => void) | undefined;

  constructor(
    readonly store: ObjectStore,
    opts: RepositoryOptions = {},
  ) {
    const { hasher, locks, maxOpenTenants = Infinity, onDamagedIndex, ...rest } = opts;
    this.onDamagedIndex = onDamagedIndex;
    if (!(maxOpenTenants >= 1)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `maxOpenTenants must be >= 1, got ${maxOpenTenants}`);
    this.maxOpenTenants = maxOpenTenants;
    this.opts = packOptions(rest);
    this.hasher = hasher ?? pageHasher();
    this.locks = lockSettings(locks);
    this.recentMaps = new RecentMaps(this.opts.recentMapsBytes);
  }

  /**
   * A share of the tenant's shared lock, held while a snapshot is ingested (shared-lock.ts): waits while
   * a prune holds the tenant, and rebuilds the tenant's index if a prune ran since it was loaded.
   */
  lockShared(t: TenantStore, w?: LockWait): Promise<SharedHold> {
    let l = this.shared.get(t);
    if (!l) this.shared.set(t, (l = new SharedLock(t, this.locks)));
    return l.acquire(w);
  }

  /** SHA-256 of n pages into out[0, 32n), on every core (PageHasher). */
  hashPages(data: Uint8Array, n: number, ps: number, out: Buffer): void {
    this.hasher.hash(data, n, ps, out);
  }

  /**
   * The tenant's store, opened on first use. A store poisoned by a failed upload is replaced by a fresh
   * one (its index loaded from the bucket again): snapshots still on the old one fail, and their replay,
   * once the bucket is back, goes to the new one instead of failing for as long as the process lives.
   */
  async tenant(name: string): Promise<TenantStore> {
    checkTenant(name);
    for (;;) {
      let t = this.tenants.get(name);
      if (t) {
        // Most recently used last: the Map's order is the eviction order.
        this.tenants.delete(name);
        this.tenants.set(name, t);
      } else {
        const opened = (async () => {
          // Pages are named by their bytes, so one cache serves every tenant: a tenant only ever takes a
          // base its own index holds, and gets the bytes that hash names.
          const ts = new TenantStore(this.store, name, this.opts, () => (this.recent ??= new RecentPages(this.opts.pageSize, this.opts.recentPagesBytes)), this.written);
          await ts.open(this.locks.staleMs);
          if (ts.damagedIndexes.length) this.onDamagedIndex?.(name, ts.damagedIndexes);
          return ts;
        })();
        opened.catch(() => this.tenants.get(name) === opened && this.tenants.delete(name));
        this.tenants.set(name, (t = opened));
        this.closeIdleTenants();
      }
      const ts = await t;
      if (!ts.poisoned) return ts;
      if (this.tenants.get(name) === t) {
        this.tenants.delete(name);
        this.shared.delete(ts); // its holders keep their hold until they release it
      }
    }
  }

  /** Forgets the least recently used stores past maxOpenTenants, except those ingested into (they hold a lock object). */
  private closeIdleTenants(): void {
    if (this.tenants.size <= this.maxOpenTenants) return;
    const ingesting = new Set([...this.shared.keys()].map((t) => t.tenant));
    for (const name of this.tenants.keys()) {
      if (this.tenants.size <= this.maxOpenTenants) return;
      if (!ingesting.has(name)) this.tenants.delete(name);
    }
  }

  /** Tenants whose stores are open. */
  get openTenants(): number {
    return this.tenants.size;
  }

  async listTenants(): Promise<string[]> {
    const out = new Set<string>();
    for await (const o of this.store.list(keys.tenants)) out.add(o.key.split('/')[1]!);
    return [...out].sort();
  }

  /**
   * Packs this process has written, over every tenant store it has opened: only ever grows. Counted as
   * they are written, not summed over the stores open now: a store replaced after a failed upload, or
   * closed when idle, takes its count with it.
   */
  async packsWritten(): Promise<number> {
    return this.written.packs;
  }

  /** Memory held by all loaded page indexes, in bytes, and pages indexed. */
  indexFootprint(): Promise<{ bytes: number; pages: number }> {
    return Promise.all([...this.tenants.values()]).then((ts) => ({
      bytes: ts.reduce((n, t) => n + t.index.bytes, 0),
      pages: ts.reduce((n, t) => n + t.index.size, 0),
    }));
  }
}
