import { mkdtemp, readdir, rm, utimes, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes } from '@pagevault/errors';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { describeObjectStoreConformance } from './conformance.js';
import { collect, expectPvError } from './conformance-helpers.js';
import { ConcurrencyLimitedObjectStore } from './concurrency-limited-object-store.js';
import { DirectoryObjectStore } from './directory-object-store.js';
import { RetryingObjectStore } from './retrying-object-store.js';

async function tempStore() {
  const root = await mkdtemp(join(tmpdir(), 'pv-objstore-'));
  return {
    root,
    store: new DirectoryObjectStore(root),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

describeObjectStoreConformance('DirectoryObjectStore', tempStore);

describeObjectStoreConformance(
  'RetryingObjectStore(ConcurrencyLimitedObjectStore(DirectoryObjectStore))',
  async () => {
    const { store, cleanup } = await tempStore();
    const limited = new ConcurrencyLimitedObjectStore(store, 4);
    return {
      store: new RetryingObjectStore(limited, { attempts: 3, baseDelayMs: 1, maxDelayMs: 10 }),
      cleanup,
    };
  },
);

describe('DirectoryObjectStore on disk', () => {
  let root: string;
  let store: DirectoryObjectStore;
  let cleanup: () => Promise<void>;
  beforeEach(async () => ({ root, store, cleanup } = await tempStore()));
  afterEach(() => cleanup());

  it('stores key "a/b/c" as the file <root>/a/b/c and leaves no temp file behind', async () => {
    await store.put('a/b/c', Buffer.from('hello'));
    expect(await readdir(join(root, 'a', 'b'))).toEqual(['c']);
    expect(store.description).toBe(`dir:${root}`);
  });

  it('never lists files that are not keys: temp files of unfinished puts, odd names', async () => {
    await mkdir(join(root, 'k'));
    await writeFile(join(root, 'k', 'x~123.abc.tmp'), 'partial');
    await writeFile(join(root, 'k', 'with space'), 'x');
    await store.put('k/real', Buffer.from('1'));
    expect(await collect(store.list('k/'))).toMatchObject([{ key: 'k/real', size: 1 }]);
  });

  it("lists a file's mtime as the object's modification time", async () => {
    await store.put('old/x', Buffer.from('1'));
    const then = new Date('2020-01-02T03:04:05.678Z');
    await utimes(join(root, 'old', 'x'), then, then);
    expect(await collect(store.list('old/'))).toEqual([{ key: 'old/x', size: 1, modifiedMs: then.getTime() }]);
  });

  it('a key that would need an existing object to be a directory is PV_INVALID_ARGUMENT', async () => {
    await store.put('file', Buffer.from('1'));
    await expectPvError(store.put('file/child', Buffer.from('2')), ErrorCodes.INVALID_ARGUMENT, 'file/child');
    expect((await store.get('file')).toString()).toBe('1');
  });

  it('a missing root is an empty store, created by the first put', async () => {
    const nested = new DirectoryObjectStore(join(root, 'not', 'yet'));
    expect(await collect(nested.list(''))).toEqual([]);
    await expectPvError(nested.get('x'), ErrorCodes.OBJECT_NOT_FOUND, 'x', join(root, 'not', 'yet'));
    await nested.put('x', Buffer.from('1'));
    expect(await nested.head('x')).toEqual({ key: 'x', size: 1 });
  });

  it('a root that is a file is PV_INVALID_ARGUMENT naming it, for list, get and put alike', async () => {
    await writeFile(join(root, 'plain'), 'not a store');
    for (const at of [join(root, 'plain'), join(root, 'plain', 'below')]) {
      const wrong = new DirectoryObjectStore(at);
      const said = `store ${at} is not a directory`;
      await expectPvError(collect(wrong.list('')), ErrorCodes.INVALID_ARGUMENT, said);
      await expectPvError(wrong.get('x'), ErrorCodes.INVALID_ARGUMENT, said);
      await expectPvError(wrong.put('x/y', Buffer.from('1')), ErrorCodes.INVALID_ARGUMENT, said);
    }
  });

  // EACCES cannot be produced as root (CI runs as root); fs-errors.spec.ts checks its mapping directly.

  it('invalid ranges are PV_INVALID_ARGUMENT', async () => {
    await store.put('r', Buffer.from('12345'));
    await expectPvError(store.getRange('r', -1, 2), ErrorCodes.INVALID_ARGUMENT, 'r');
    await expectPvError(store.getRange('r', 0, 1.5), ErrorCodes.INVALID_ARGUMENT, 'r');
  });
});
