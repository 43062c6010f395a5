import type { ObjectInfo, ObjectStore } from '@pagevault/objstore';

export interface ObjectStoreHooks {
  /** Runs once a put has succeeded in the real store (the compactor child SIGKILLs itself here). */
  afterPut?(key: string): void;
  /** Runs when a listing starts. */
  onList?(prefix: string): void;
}

/**
 * An ObjectStore decorator over the real store that lets a test watch it or stop the process at a chosen
 * point: with `afterPut` killing the process, it ends with exactly that object durable and nothing after
 * it — no later put, no offset commit, no clean-up.
 */
export class HookedObjectStore implements ObjectStore {
  constructor(
    private readonly inner: ObjectStore,
    private readonly hooks: ObjectStoreHooks,
  ) {}

  get description(): string {
    return this.inner.description;
  }

  async put(key: string, body: Uint8Array, sha256?: string): Promise<void> {
    await this.inner.put(key, body, sha256);
    this.hooks.afterPut?.(key);
  }

  get(key: string): Promise<Buffer> {
    return this.inner.get(key);
  }

  getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.inner.getRange(key, offset, length, into);
  }

  head(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.head(key);
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    this.hooks.onList?.(prefix);
    return this.inner.list(prefix);
  }

  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
}
