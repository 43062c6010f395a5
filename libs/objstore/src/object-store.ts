/** One stored object as `list` and `head` report it. */
export interface ObjectInfo {
  key: string;
  size: number;
  /**
   * When the object was last written, ms since the epoch, as the store's clock saw it (S3
   * LastModified, whole seconds; a file's mtime). Set by `list`, for garbage collection's grace
   * period; `head` leaves it out.
   */
  modifiedMs?: number;
}

/**
 * The object store port (restic's Backend): a flat map from keys to immutable byte strings.
 * Every adapter passes the one conformance suite in `@pagevault/objstore/conformance`.
 *
 * Keys are '/'-separated segments of [A-Za-z0-9._-] (see `validateObjectKey`); every method
 * rejects other keys with PV_INVALID_ARGUMENT before touching the store. A key MUST NOT also be
 * a folder of other keys ("x" and "x/y"): S3 allows it, a directory cannot hold both, and the
 * directory store refuses the second with PV_INVALID_ARGUMENT. Key layouts must avoid it.
 */
export interface ObjectStore {
  /**
   * Writes the whole object atomically (readers see all or nothing). Idempotent for content-addressed keys.
   * `sha256`: the hex SHA-256 of body when the caller knows it (an object named by its hash); a store
   * that has the server check what arrived uses it instead of hashing the body again.
   */
  put(key: string, body: Uint8Array, sha256?: string): Promise<void>;
  /** Whole object; throws PvError PV_OBJECT_NOT_FOUND naming the key. */
  get(key: string): Promise<Buffer>;
  /**
   * Bytes [offset, offset+length); PV_OBJECT_NOT_FOUND, or PV_OBJECT_CORRUPT if the object is shorter.
   * Given `into` (at least `length` bytes), a store may read into it and return a view of it instead of
   * allocating (a reader of many large ranges, which would otherwise make V8 collect the old generation
   * every few MiB); the caller must not reuse `into` while it still uses the result.
   */
  getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer>;
  /** Size of the object, or undefined when there is none. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** All keys under prefix (a plain string prefix, as in S3), in lexicographic order, paged internally, with sizes and modification times. */
  list(prefix: string): AsyncIterable<ObjectInfo>;
  /** Removes the object; removing a missing key is not an error (as in S3). */
  delete(key: string): Promise<void>;
  /** Where the objects live, e.g. "s3://bucket" or "dir:/path", for messages. */
  readonly description: string;
  /**
   * Removes what puts under `prefix` left unfinished (a writer killed mid-put) and last touched more than
   * `olderThanMs` ago; resolves with how many and their bytes. Only stores that leave such things (a
   * directory's temp files) have it; prune calls it.
   */
  sweepUnfinished?(prefix: string, olderThanMs: number): Promise<{ removed: number; bytes: number }>;
}
