import type { ObjectStore } from '@pagevault/objstore';
import { checkTenant, keys } from './keys';
import { HashPool, hashPagesSync } from './hash-pool';
import { TenantStore, type RepoOptions } from './tenant-store';

/**
 * The repository over one object store: a TenantStore per tenant, created on first use with its page
 * index loaded from the store. Tenants never share pages (the dedup scope is the tenant).
 */
export class Repository {
  private readonly tenants = new Map<string, Promise<TenantStore>>();
  private readonly opts: Required<Omit<RepoOptions, 'hashThreads'>>;
  private readonly pool: HashPool | undefined;

  constructor(
    readonly store: ObjectStore,
    opts: RepoOptions = {},
  ) {
    const { hashThreads = 0, ...rest } = opts;
    this.opts = { compressionLevel: 1, packTargetBytes: 12 << 20, pageSize: 4096, ...rest };
    this.pool = hashThreads > 0 ? new HashPool(hashThreads) : undefined;
  }

  /** SHA-256 of n pages into out[0, 32n): on the worker threads when configured. */
  hashPages(data: Uint8Array, n: number, ps: number, out: Buffer): Promise<void> | void {
    return this.pool ? this.pool.hashPages(data, n, ps, out) : hashPagesSync(data, n, ps, out);
  }

  async close(): Promise<void> {
    await this.pool?.close();
  }

  tenant(name: string): Promise<TenantStore> {
    checkTenant(name);
    let t = this.tenants.get(name);
    if (!t) {
      t = (async () => {
        const ts = new TenantStore(this.store, name, this.opts);
        await ts.refreshIndex();
        return ts;
      })();
      t.catch(() => this.tenants.delete(name));
      this.tenants.set(name, t);
    }
    return t;
  }

  async listTenants(): Promise<string[]> {
    const out = new Set<string>();
    for await (const o of this.store.list(keys.tenants)) out.add(o.key.split('/')[1]!);
    return [...out].sort();
  }

  /** Memory held by all loaded page indexes, in bytes, and pages indexed. */
  indexFootprint(): Promise<{ bytes: number; pages: number }> {
    return Promise.all([...this.tenants.values()]).then((ts) => ({
      bytes: ts.reduce((n, t) => n + t.index.bytes, 0),
      pages: ts.reduce((n, t) => n + t.index.size, 0),
    }));
  }
}
