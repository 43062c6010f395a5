import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { DirectoryObjectStore } from '@pagevault/objstore';
import type { Manifest } from './manifest';
import { Repository } from './repository';
import { addTags, listSnapshots, parseLatest, removeTags, resolveSnapshot, snapshotFilter } from './snapshot-refs';
import type { TenantStore } from './tenant-store';

function manifest(id: string, host: string, pid: number, startTimeMs: number): Manifest {
  return {
    format: 'pagevault.manifest.v1', snapshotId: id, tenant: 'acme', host, pid, cmdline: 'x', pageSize: 4096, startTimeMs,
    committedAtMs: startTimeMs + 1, mode: 'full', consistency: 'frozen', vmas: [], streamDigest: '00',
    counts: { vmas: 0, dataPages: 0, zeroPages: 0, filePages: 0, parentPages: 0, newPages: 0, newBytes: 0, mapNodesWritten: 0, mapBytesWritten: 0 },
  };
}

describe('snapshot references and tags', () => {
  let dir: string;
  let t: TenantStore;
  const id = (n: number) => `c${n}`.padEnd(32, '0');
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pv-refs-'));
    t = await new Repository(new DirectoryObjectStore(dir)).tenant('acme');
    // Ids sort against time on purpose: "latest" is by start time, not by key order.
    await t.putManifest(manifest(id(9), 'web1', 10, 1000));
    await t.putManifest(manifest(id(8), 'web1', 11, 2000));
    await t.putManifest(manifest(id(7), 'web2', 10, 3000));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('parses latest and its filters, and refuses anything else after latest:', () => {
    expect(parseLatest('latest')).toEqual({});
    expect(parseLatest('latest:host=web1,pid=10,tag=nightly')).toEqual({ host: 'web1', pid: 10, tag: 'nightly' });
    expect(parseLatest(id(1))).toBeUndefined();
    for (const bad of ['latest:pid=x', 'latest:owner=me', 'latest:tag=a/b', 'latest:host=', 'latest:pid=1,pid=2']) {
      expect(() => parseLatest(bad), bad).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    }
  });

  it('resolves the latest by start time, narrowed by host, pid and tag', async () => {
    expect((await resolveSnapshot(t, 'latest')).snapshotId).toBe(id(7));
    expect((await resolveSnapshot(t, 'latest:host=web1')).snapshotId).toBe(id(8));
    expect((await resolveSnapshot(t, 'latest', { pid: 10, host: 'web1' })).snapshotId).toBe(id(9));
    await addTags(t, id(9), ['nightly', 'keep']);
    await addTags(t, id(7), ['keep']);
    expect((await resolveSnapshot(t, 'latest:tag=nightly')).snapshotId).toBe(id(9));
    expect((await resolveSnapshot(t, 'latest:tag=keep')).snapshotId).toBe(id(7));
    expect((await listSnapshots(t, { tag: 'keep' })).map((m) => [m.snapshotId, m.tags])).toEqual([[id(9), ['keep', 'nightly']], [id(7), ['keep']]]);
    await removeTags(t, id(7), ['keep']);
    expect((await resolveSnapshot(t, 'latest:tag=keep')).snapshotId).toBe(id(9));
    await expect(resolveSnapshot(t, 'latest:tag=weekly')).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT, message: expect.stringContaining('tag=weekly') });
  });

  it('resolves ids and unique prefixes; an ambiguous or unknown one is PV_UNKNOWN_SNAPSHOT, a malformed one PV_INVALID_ARGUMENT', async () => {
    expect((await resolveSnapshot(t, id(8))).pid).toBe(11);
    expect((await resolveSnapshot(t, 'c8')).snapshotId).toBe(id(8));
    await expect(resolveSnapshot(t, 'c')).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT, message: expect.stringContaining('ambiguous') });
    await expect(resolveSnapshot(t, 'ffff')).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT });
    // Not a reference at all: the caller's mistake (exit 2, HTTP 400), not a snapshot missing.
    await expect(resolveSnapshot(t, '../c8')).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('is not a snapshot id') });
  });

  it('never lets a filter be dropped or quietly overridden: ids must pass it, and it must agree with latest:', async () => {
    await addTags(t, id(9), ['nightly']);
    expect((await resolveSnapshot(t, id(9), { pid: 10, host: 'web1', tag: 'nightly' })).snapshotId).toBe(id(9));
    await expect(resolveSnapshot(t, id(9), { pid: 99 })).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT, message: expect.stringContaining('pid 10, not 99') });
    await expect(resolveSnapshot(t, 'c8', { host: 'web2' })).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT });
    await expect(resolveSnapshot(t, id(8), { tag: 'nightly' })).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT, message: expect.stringContaining('no tag nightly') });
    await expect(resolveSnapshot(t, 'latest:pid=10', { pid: 11 })).rejects.toMatchObject({ code: ErrorCodes.INVALID_ARGUMENT });
    expect((await resolveSnapshot(t, 'latest:pid=10', { pid: 10 })).snapshotId).toBe(id(7));
  });

  it('resolves latest past a damaged manifest only when told what to do with it', async () => {
    await t.store.put(`t/acme/snapshots/${id(6)}.json`, Buffer.from('{"format": "pagevault.manifest.v1", "snaps'));
    await expect(resolveSnapshot(t, 'latest')).rejects.toMatchObject({ code: ErrorCodes.OBJECT_CORRUPT });
    const left: string[] = [];
    expect((await resolveSnapshot(t, 'latest', {}, (e) => left.push(e.message))).snapshotId).toBe(id(7));
    expect(left).toEqual([expect.stringContaining(id(6))]);
  });

  it('refuses a query value given twice (a list) instead of matching nothing', () => {
    expect(() => snapshotFilter({ host: ['a', 'b'] as unknown as string })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: expect.stringContaining('host must be given once') }));
  });

  it('builds a checked filter from text values, as the CLI options and the HTTP query give them', () => {
    expect(snapshotFilter({ host: 'web1', pid: '42', tag: 'nightly' })).toEqual({ host: 'web1', pid: 42, tag: 'nightly' });
    expect(snapshotFilter({ host: undefined, pid: undefined })).toEqual({});
    for (const k of ['host', 'pid', 'tag']) {
      expect(() => snapshotFilter({ [k]: '' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT, message: `${k} is empty: give a value, or leave it out to not filter by ${k}` }));
    }
    for (const ref of ['latest:', 'latest:,']) expect(() => parseLatest(ref)).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect(() => snapshotFilter({ pid: '0' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
    expect(() => snapshotFilter({ pid: '99999999999999999999' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT })); // not a pid, as in a POST body
    expect(() => snapshotFilter({ tag: 'a b' })).toThrow(expect.objectContaining({ code: ErrorCodes.INVALID_ARGUMENT }));
  });

  it('will not tag a snapshot that does not exist', async () => {
    await expect(addTags(t, id(1), ['x'])).rejects.toMatchObject({ code: ErrorCodes.UNKNOWN_SNAPSHOT });
    expect(await listSnapshots(t, { tag: 'x' })).toEqual([]);
  });
});
