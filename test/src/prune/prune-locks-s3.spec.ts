import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { DEFAULT_MAX_FRAME_BYTES, decodeFrame } from '@pagevault/format';
import { Repository, SnapshotIngest, forgetSnapshots, keys, prune, type Manifest } from '@pagevault/repo';
import { restoreFrames } from '@pagevault/restore';
import { openObjectStore } from '@pagevault/runtime';
import { PAGE, randomPages, writeSnapshot, type SyntheticProcess } from '../compactor/synthetic-memory';
import { requireS3Server, s3Env, s3Store } from '../objstore/s3-env';

// Tenant locks on the real S3 server (SeaweedFS locally), through the store the services open: prune
// against a snapshot being ingested by SnapshotIngest, the compactor's own code.
const tenant = `it-locks-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
const store = openObjectStore({ kind: 's3', ...s3Env });
const memory = (pid: number): SyntheticProcess => ({
  tenant, host: 'host-a', pid, cmdline: 'locks-it', startTimeMs: 1_700_000_000_000 + pid, pageSize: PAGE,
  vmas: [{ start: 0x7f00_0000_0000, data: randomPages(64), zeroPages: 4 }],
});

async function lockKeys(): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(keys.locks(tenant))) out.push(o.key);
  return out;
}

beforeAll(() => requireS3Server(s3Store()));
afterAll(async () => {
  for await (const o of store.list(`t/${tenant}/`)) await store.delete(o.key);
}, 60_000);

describe('tenant locks on S3', () => {
  it('prune is refused while a snapshot is being ingested, naming its holder, and runs once it has committed', async () => {
    const repo = new Repository(store, { locks: { host: 'compactor-s3', pid: 31337 } });
    const old = writeSnapshot(memory(1));
    const first = new SnapshotIngest(repo, old.snapshotId);
    let gone: Manifest | undefined;
    for (const f of old.frames) gone = (await first.accept(decodeFrame(f, DEFAULT_MAX_FRAME_BYTES))) ?? gone;
    await forgetSnapshots(await repo.tenant(tenant), [gone!.snapshotId]);

    const s = writeSnapshot(memory(2));
    const ingest = new SnapshotIngest(repo, s.snapshotId);
    const [begin, ...rest] = s.frames.map((f) => decodeFrame(f, DEFAULT_MAX_FRAME_BYTES));
    await ingest.accept(begin!);
    const held = await lockKeys();
    expect(held).toEqual([expect.stringMatching(new RegExp(`^t/${tenant}/locks/shared-`))]);
    await expect(prune(store, tenant, { graceMs: 0 })).rejects.toMatchObject({
      code: ErrorCodes.REPO_LOCKED,
      message: expect.stringContaining(`shared lock ${held[0]} held by host compactor-s3 pid 31337`),
    });
    expect(await lockKeys()).toEqual(held);

    let m: Manifest | undefined;
    for (const f of rest) m = (await ingest.accept(f)) ?? m;
    expect(await lockKeys()).toEqual([]);
    const r = await prune(store, tenant, { graceMs: 0 });
    expect(r.packs.deleted).toBe(1); // the forgotten snapshot's pack
    expect((await lockKeys()).map((k) => k.split('/').pop())).toEqual([expect.stringMatching(/^pruned-/)]);
    const out: Buffer[] = [];
    for await (const f of restoreFrames(await new Repository(store).tenant(tenant), m!)) out.push(f.raw);
    expect(Buffer.concat(out).equals(s.stream)).toBe(true);
  });

  it('what a snapshot pays for its lock: one PUT and one LIST to take it, one DELETE to give it back', async () => {
    const repo = new Repository(store);
    const t = await repo.tenant(tenant);
    const n = 20;
    let take = 0;
    let give = 0;
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      const h = await repo.lockShared(t);
      const t1 = performance.now();
      await h.release();
      take += t1 - t0;
      give += performance.now() - t1;
    }
    console.log(`lock on ${store.description}: take (PUT + LIST) ${(take / n).toFixed(1)} ms, release (DELETE) ${(give / n).toFixed(1)} ms, mean of ${n}`);
    expect(await lockKeys()).not.toContainEqual(expect.stringContaining('/shared-'));
  });
});
