import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, PvError, errnoOf } from '@pagevault/errors';
import { listDirectory, TEMP_MARKER, unfinishedPuts } from './directory-listing.js';
import { isMissing, mapFsError, mkdirp } from './fs-errors.js';
import { objectNotFound, objectShorter } from './object-errors.js';
import { validateObjectKey, validateObjectPrefix, validateRange } from './object-key.js';
import type { ObjectInfo, ObjectStore } from './object-store.js';

/**
 * The object store on a local filesystem: key "a/b/c" is the file <root>/a/b/c. For one host,
 * tests, and air-gapped copies of a bucket. Empty directories left by `delete` are harmless
 * and are not removed (removing them would race with a concurrent `put` into them).
 */
export class DirectoryObjectStore implements ObjectStore {
  readonly root: string;
  readonly description: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.description = `dir:${this.root}`;
  }

  async put(key: string, body: Uint8Array): Promise<void> {
    const path = this.path(key);
    // The temp name holds a character keys cannot contain, so `list` never mistakes it for a key.
    const temp = `${path}${TEMP_MARKER}${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      // Every step of a put is a trip through the event loop, which a busy compactor turns every few
      // milliseconds: the directory is made when the open finds it missing, not checked on every put.
      const file = await open(temp, 'wx').catch(async (e: unknown) => {
        if (!isMissing(e)) throw e;
        await mkdirp(dirname(path));
        return open(temp, 'wx');
      });
      try {
        // One write of the whole body (FileHandle.writeFile writes 512 KiB at a time: 28 trips for a pack).
        for (let done = 0; done < body.length; ) {
          const { bytesWritten } = await file.write(body, done, body.length - done, done);
          if (bytesWritten === 0) throw Object.assign(new Error(`wrote 0 of ${body.length - done} bytes`), { code: 'EIO' });
          done += bytesWritten;
        }
        await file.sync(); // the bytes are on disk before the name points at them
      } finally {
        await file.close();
      }
      await rename(temp, path); // atomic: readers see the old object or the new one
      await syncDirectory(dirname(path));
    } catch (e) {
      await unlink(temp).catch(() => undefined);
      throw (await this.rootError(e)) ?? mapFsError(e, 'put', key, this.description);
    }
  }

  /** Deletes the temp files of puts that died (their writer killed before its rename) under `prefix`'s directory. */
  async sweepUnfinished(prefix: string, olderThanMs: number): Promise<{ removed: number; bytes: number }> {
    validateObjectPrefix(prefix);
    const before = Date.now() - olderThanMs;
    const out = { removed: 0, bytes: 0 };
    for await (const t of unfinishedPuts(this.root, prefix.slice(0, prefix.lastIndexOf('/') + 1), this.description)) {
      if (t.modifiedMs >= before) continue; // a put in progress, or one too recent to judge
      await unlink(t.path).catch((e: unknown) => (isMissing(e) ? undefined : Promise.reject(mapFsError(e, 'delete', t.path, this.description))));
      out.removed++;
      out.bytes += t.size;
    }
    return out;
  }

  async get(key: string): Promise<Buffer> {
    try {
      return await readFile(this.path(key));
    } catch (e) {
      throw (await this.rootError(e)) ??
        (isMissing(e) ? objectNotFound(key, this.description, e) : mapFsError(e, 'get', key, this.description));
    }
  }

  async getRange(key: string, offset: number, length: number, into?: Buffer): Promise<Buffer> {
    const path = this.path(key);
    validateRange(key, offset, length);
    try {
      const file = await open(path, 'r');
      try {
        const size = (await file.stat()).size;
        if (offset + length > size) throw objectShorter(key, this.description, offset, length, size);
        const out = into && into.length >= length ? into.subarray(0, length) : Buffer.allocUnsafe(length);
        let filled = 0;
        while (filled < length) {
          const { bytesRead } = await file.read(out, filled, length - filled, offset + filled);
          if (bytesRead === 0) throw objectShorter(key, this.description, offset, length, offset + filled);
          filled += bytesRead;
        }
        return out;
      } finally {
        await file.close();
      }
    } catch (e) {
      throw isMissing(e)
        ? objectNotFound(key, this.description, e)
        : mapFsError(e, 'getRange', key, this.description);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    try {
      const s = await stat(this.path(key));
      return s.isFile() ? { key, size: s.size } : undefined;
    } catch (e) {
      if (isMissing(e)) return undefined;
      throw mapFsError(e, 'head', key, this.description);
    }
  }

  list(prefix: string): AsyncIterable<ObjectInfo> {
    validateObjectPrefix(prefix);
    return this.underRoot(listDirectory(this.root, prefix, this.description));
  }

  async delete(key: string): Promise<void> {
    try {
      await unlink(this.path(key));
    } catch (e) {
      if (!isMissing(e)) throw mapFsError(e, 'delete', key, this.description);
    }
  }

  /** A missing root is an empty store; a root that is a file is a mistake, said once, not "no objects". */
  private async *underRoot(objects: AsyncIterable<ObjectInfo>): AsyncGenerator<ObjectInfo> {
    const wrong = await this.rootError(Object.assign(new Error('list'), { code: 'ENOTDIR' }));
    if (wrong) throw wrong;
    yield* objects;
  }

  /** The error to report when `e` (ENOTDIR) comes from the root, or one of its parents, being a file. */
  private async rootError(e: unknown): Promise<PvError | undefined> {
    if (errnoOf(e) !== 'ENOTDIR') return undefined;
    const notDir = await stat(this.root).then(
      (s) => !s.isDirectory(),
      (err: unknown) => errnoOf(err) === 'ENOTDIR',
    );
    if (!notDir) return undefined;
    return new PvError(ErrorCodes.INVALID_ARGUMENT, `store ${this.root} is not a directory (it or a parent of it is a file)`, {
      cause: e, details: { store: this.description },
    });
  }

  private path(key: string): string {
    return join(this.root, ...validateObjectKey(key).split('/'));
  }
}

async function syncDirectory(dir: string): Promise<void> {
  // Makes the rename itself durable. Some filesystems refuse fsync on a directory; the data is
  // already synced, so that is not worth failing the write for.
  const handle = await open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  await handle.sync().catch(() => undefined);
  await handle.close();
}
