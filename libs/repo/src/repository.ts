import type { ObjectStore } from '@pagevault/objstore';
import { checkTenant, keys } from './keys';
import { pageHasher, type PageHasher } from '@pagevault/hashing';
import { TenantStore, packOptions, type PackOptions, type RepoOptions } from './tenant-store';

/**
 * The repository over one object store: a TenantStore per tenant, created on first use with its page
 * index loaded from the store. Tenants never share pages (the dedup scope is the tenant).
 */
export class Repository {
  private readonly tenants = new Map<string, Promise<TenantStore>>();
  private readonly opts: PackOptions;
  private readonly hasher: PageHasher;

  constructor(
    readonly store: ObjectStore,
    opts: RepoOptions = {},
  ) {
    const { hasher, ...rest } = opts;
    this.opts = packOptions(rest);
    this.hasher = hasher ?? pageHasher();
  }

  /** SHA-256 of n pages into out[0, 32n), on every core (PageHasher). */
  hashPages(data: Uint8Array, n: number, ps: number, out: Buffer): void {
    this.hasher.hash(data, n, ps, out);
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
