import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireS3Server, s3Env, s3Store } from '../objstore/s3-env';
import { CLI } from './cli-env';

// The bucket's endpoint goes away in the middle of a restore from S3 (a TCP proxy in front of SeaweedFS
// cuts every connection and refuses new ones): the restore gives up after its retries with the store's
// error and exit code, and leaves nothing behind; once the endpoint is back the same restore succeeds.

/** Forwards to the S3 server; after `cutAfter` bytes of responses it cuts and refuses until `cut` is reset. */
class CuttableProxy {
  cut = false;
  cutAfter = Infinity;
  served = 0;
  private readonly sockets = new Set<Socket>();
  private server!: Server;

  async start(): Promise<string> {
    const upstream = new URL(s3Env.endpoint);
    this.server = createServer((client) => {
      if (this.cut) return void client.destroy();
      const up = connect(Number(upstream.port), upstream.hostname);
      for (const s of [client, up]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(up);
      up.on('data', (b: Buffer) => {
        this.served += b.length;
        if (this.served >= this.cutAfter) this.cutNow();
      });
      up.pipe(client);
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  cutNow(): void {
    this.cut = true;
    for (const s of this.sockets) s.destroy();
  }

  reset(): void {
    this.cut = false;
    this.cutAfter = Infinity;
    this.served = 0;
  }

  stop(): Promise<void> {
    this.cutNow();
    return new Promise((r) => this.server.close(() => r()));
  }
}

const work = mkdtempSync(join(tmpdir(), 'pv-s3-outage-'));
const tenant = `it-s3out-${randomBytes(4).toString('hex')}`;
const proxy = new CuttableProxy();
let proxied: string;
let target: ChildProcess;
let snapshot: string;

/** The CLI on the bucket, through `endpoint` (asynchronously: the proxy lives in this process). */
function pv(endpoint: string, ...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, '--s3', '--tenant', tenant, ...args], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, PV_S3_ENDPOINT: endpoint, PV_S3_BUCKET: s3Env.bucket },
    }, (e, out, err) => resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, out, err }));
  });
}

beforeAll(async () => {
  await requireS3Server(s3Store());
  proxied = await proxy.start();
  // 32 MiB of random bytes: packs that do not compress, many ranged GETs to restore them.
  target = spawn(process.execPath, ['-e', "globalThis.keep = require('node:crypto').randomBytes(32 << 20); console.log('ready'); setInterval(() => {}, 1e6);"], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => createInterface({ input: target.stdout! }).once('line', r));
  const s = await pv(s3Env.endpoint, '--json', 'snapshot', String(target.pid));
  expect(s.code, s.err).toBe(0);
  snapshot = (JSON.parse(s.out) as { snapshotId: string }[])[0]!.snapshotId;
}, 120_000);

afterAll(async () => {
  target?.kill('SIGKILL');
  await proxy.stop();
  const store = s3Store();
  for await (const o of store.list(`t/${tenant}/`)) await store.delete(o.key);
  rmSync(work, { recursive: true, force: true });
});

describe('a restore from S3 whose endpoint goes away midway', () => {
  it('fails with exit 7 and the store error for each output, leaves nothing, and succeeds once the endpoint is back', async () => {
    const reference = join(work, 'reference.stream');
    const direct = await pv(s3Env.endpoint, 'restore', snapshot, '--format', 'stream', '--out', reference);
    expect(direct.code, direct.err).toBe(0);

    const out = mkdtempSync(join(work, 'out-'));
    for (const [format, name] of [['stream', 'stream'], ['raw', 'raw'], ['elf', 'core']] as const) {
      proxy.reset();
      proxy.cutAfter = 4 << 20; // 4 MiB of the ~32 MiB of packs
      const r = await pv(proxied, 'restore', snapshot, '--format', format, '--out', join(out, name));
      expect(proxy.cut, `${format}: the endpoint was cut`).toBe(true);
      expect(r.code, `${format}: ${r.err}`).toBe(7);
      expect(r.err).toContain('PV_STORE_UNAVAILABLE');
      expect(r.err).toContain(proxied);
      expect(readdirSync(out), format).toEqual([]); // nothing under the name asked for, no temporary left
    }

    proxy.reset();
    const again = await pv(proxied, 'restore', snapshot, '--format', 'stream', '--out', join(out, 'stream'));
    expect(again.code, again.err).toBe(0);
    expect(readFileSync(join(out, 'stream')).equals(readFileSync(reference))).toBe(true);
  }, 180_000);
});
