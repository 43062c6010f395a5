import { ErrorCodes, PvError } from '@pagevault/errors';
import type { ObjectInfo, ObjectStore } from './object-store.js';
import { Semaphore } from './semaphore.js';

/**
 * Lets at most `maxInFlight` requests reach the inner store at once; the rest wait in FIFO order.
 * This bounds sockets and server load, and with it the request bodies held by the inner store.
 * It does not bound the bytes callers hold while they wait: callers bound those themselves.
 * Place it inside a RetryingObjectStore, so that a request waiting out its backoff frees its slot.
 */
export class ConcurrencyLimitedObjectStore implements ObjectStore {
  readonly description: string;
  private readonly slots: Semaphore;

  constructor(
    private readonly inner: ObjectStore,
    readonly maxInFlight: number,
  ) {
    if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
      throw new PvError(
        ErrorCodes.INVALID_ARGUMENT,
        `maxInFlight must be an integer >= 1, got ${maxInFlight}`,
      );
    }
    this.slots = new Semaphore(maxInFlight);
    this.description = inner.description;
  }

  put(key: string, body: Uint8Array, sha256?: string): Promise<void> {
    return this.slots.run(() => this.inner.put(key, body, sha256));
  }
  get(key: string): Promise<Buffer> {
    return this.slots.run(() => this.inner.get(key));
  }
  getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    return this.slots.run(() => this.inner.getRange(key, offset, length, into));
  }
  head(key: string): Promise<ObjectInfo | undefined> {
    return this.slots.run(() => this.inner.head(key));
  }
  delete(key: string): Promise<void> {
    return this.slots.run(() => this.inner.delete(key));
  }

  /**
   * Each step of the inner iterator holds a slot: the steps that fetch a page are the requests.
   * Between steps the listing holds nothing, so a slow consumer cannot starve other callers.
   */
  async *list(prefix: string): AsyncGenerator<ObjectInfo> {
    const it = this.inner.list(prefix)[Symbol.asyncIterator]();
    try {
      for (;;) {
        const step = await this.slots.run(() => it.next());
        if (step.done) return;
        yield step.value;
      }
    } finally {
      await it.return?.();
    }
  }
}
