import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, rmdirSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { cgroup2Mount } from '@pagevault/capture';
import { startFixture } from '../capture/helpers/target-process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readProcessMemory, startMemtarget, type Running, type SourceInfo } from '../restore-outputs/helpers/memtarget';
import { kafkaBrokers, requireKafka, testAdmin } from '../framelog/kafka-env';
import { requireS3Server, s3Env, s3Store } from '../objstore/s3-env';
import { directDump } from '../e2e/pipeline-env';
import type { Manifest } from '@pagevault/repo';

// The three NestJS services as real processes on the real Kafka and S3: agent → compactor → restorer.
const root = resolve(__dirname, '../../..');
const tag = randomBytes(4).toString('hex');
const token = `tok-${tag}`;
const tenant = `svc-${tag}`;
const topic = `pv-svc-${Date.now()}-${tag}`;
const ports = { agent: 17701 + (parseInt(tag.slice(0, 2), 16) % 50), compactor: 17801 + (parseInt(tag.slice(0, 2), 16) % 50), restorer: 17901 + (parseInt(tag.slice(0, 2), 16) % 50) };
const env = {
  ...process.env, PV_KAFKA_BROKERS: kafkaBrokers.join(','), PV_KAFKA_TOPIC: topic, PV_KAFKA_DLQ_TOPIC: `${topic}.dlq`, PV_KAFKA_PARTITIONS: '2',
  PV_S3_ENDPOINT: s3Env.endpoint, PV_S3_BUCKET: s3Env.bucket, PV_S3_REGION: s3Env.region, PV_S3_ACCESS_KEY: s3Env.accessKeyId, PV_S3_SECRET_KEY: s3Env.secretAccessKey,
  PV_AUTH_TOKEN: token, PV_TENANT: tenant, PV_COMPACTOR_GROUP: `pv-svc-${tag}`, PV_LOG_LEVEL: 'warn',
};
const procs: ChildProcess[] = [];
let src: Running<SourceInfo>;
const targets: Running<unknown>[] = [];

function start(app: 'agent' | 'compactor' | 'restorer'): void {
  const p = spawn(process.execPath, [resolve(root, `apps/${app}/dist/main.js`)], { env: { ...env, PV_HTTP_PORT: String(ports[app]) }, stdio: ['ignore', 'ignore', 'inherit'] });
  procs.push(p);
}

/** A thread of `pid` other than its main one (Node always runs a few). */
const threadOf = (pid: number) => Number(readdirSync(`/proc/${pid}/task`).find((t) => Number(t) !== pid));
const url = (app: keyof typeof ports, path: string) => `http://127.0.0.1:${ports[app]}${path}`;
const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  await requireKafka();
  await requireS3Server(s3Store());
  for (const app of ['agent', 'compactor', 'restorer'] as const) start(app);
  for (const app of ['agent', 'compactor', 'restorer'] as const) {
    await until(`${app} /healthz`, async () => ((await fetch(url(app, '/healthz'))).ok ? true : undefined));
  }
  src = await startMemtarget<SourceInfo>(['source']);
  process.kill(src.info.pid, 'SIGSTOP');
  for (let i = 0; i < 300 && !/^\d+ \(.*\) T/.test(readFileSync(`/proc/${src.info.pid}/stat`, 'utf8')); i++) execFileSync('sleep', ['0.01']);
}, 180_000);

afterAll(async () => {
  for (const p of procs) p.kill('SIGTERM');
  await Promise.all(procs.map((p) => new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)))));
  await Promise.all([src, ...targets].map((p) => p?.stop()));
  const admin = testAdmin();
  await admin.connect();
  await admin.deleteTopics({ topics: [topic, `${topic}.dlq`] }).catch(() => undefined);
  await admin.disconnect();
  const store = s3Store();
  for await (const o of store.list(`t/${tenant}/`)) await store.delete(o.key);
}, 120_000);

describe('agent, compactor and restorer services', () => {
  it('require the bearer token on every route but health and metrics', async () => {
    expect((await fetch(url('agent', '/snapshots/x'))).status).toBe(401);
    const wrong = await fetch(url('restorer', `/tenants/${tenant}/snapshots`), { headers: { authorization: 'Bearer wrong' } });
    // An error body like every other: code, message, retriable.
    expect([wrong.status, await wrong.json()]).toEqual([401, { code: 'PV_HTTP', message: 'a valid bearer token is required', retriable: false }]);
    expect((await fetch(url('compactor', '/readyz'))).status).toBe(200);
    expect((await fetch(url('agent', '/metrics'))).status).toBe(200);
  });

  it('take a snapshot over HTTP that the restorer then streams byte-identical to a direct dump', async () => {
    const res = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: JSON.stringify({ pid: src.info.pid }) });
    expect(res.status).toBe(201);
    const [job] = (await res.json()) as { id: string }[];
    const done = await until('the agent job', async () => {
      const j = (await (await fetch(url('agent', `/snapshots/${job!.id}`), { headers: auth })).json()) as { state: string; error?: unknown };
      if (j.state === 'failed') throw new Error(JSON.stringify(j.error));
      return j.state === 'sent' ? j : undefined;
    });
    expect(done.state).toBe('sent');
    const m = await until('the manifest', async () => {
      const r = await fetch(url('restorer', `/tenants/${tenant}/snapshots/${job!.id}`), { headers: auth });
      return r.ok ? ((await r.json()) as Manifest) : undefined;
    });
    expect(m.counts.dataPages).toBeGreaterThan(50);
    const latestReply = await fetch(url('restorer', `/tenants/${tenant}/snapshots/latest?pid=${m.pid}`), { headers: auth });
    expect(latestReply.headers.get('content-type')).toMatch(/^application\/json/);
    const latestText = await latestReply.text();
    expect(latestText).toContain(String(0xffffffffff600000n)); // the vsyscall page's exact address, above 2^53
    const latest = JSON.parse(latestText) as Manifest;
    expect(latest.snapshotId).toBe(job!.id);
    const stream = Buffer.from(await (await fetch(url('restorer', `/tenants/${tenant}/snapshots/${job!.id}/stream`), { headers: auth })).arrayBuffer());
    expect(stream.equals(await directDump(src.info.pid, m))).toBe(true);
    // HEAD answers the headers of latest's stream (which snapshot it is) without a body.
    const head = await fetch(url('restorer', `/tenants/${tenant}/snapshots/latest/stream`), { method: 'HEAD', headers: auth });
    expect([head.status, head.headers.get('x-pagevault-snapshot'), (await head.arrayBuffer()).byteLength]).toEqual([200, job!.id, 0]);
    const metrics = await (await fetch(url('agent', '/metrics'))).text();
    expect(metrics).toMatch(/pagevault_agent_pages_total\{fate="sent"\} [1-9]/);
    const cm = await (await fetch(url('compactor', '/metrics'))).text();
    expect(cm).toMatch(/pagevault_compactor_snapshots_committed_total [1-9]/);
    expect(cm).toMatch(/pagevault_compactor_packs_written_total [1-9]/);
    // Consumer lag, read from the broker: every frame of the snapshot committed past, so it drains to 0.
    await until('the consumer lag to reach 0', async () => {
      const lag = /^pagevault_compactor_consumer_lag_records (\S+)$/m.exec(await (await fetch(url('compactor', '/metrics'))).text())?.[1];
      return lag === '0' ? lag : undefined;
    });
  });

  it('roll a running process back to its snapshot over HTTP: frozen for the writes, its memory as it was, running again', async () => {
    const proc = await startMemtarget<SourceInfo>(['source']);
    targets.push(proc);
    const pid = proc.info.pid;
    const res = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: JSON.stringify({ pid }) });
    const [snap] = (await res.json()) as { id: string }[];
    await until('the manifest', async () => ((await fetch(url('restorer', `/tenants/${tenant}/snapshots/${snap!.id}`), { headers: auth })).ok ? true : undefined));
    const regions = proc.info.regions.map((r) => ({ start: Number(r.start), len: r.pages * proc.info.pageSize }));
    const before = regions.map((r) => readProcessMemory(pid, r.start, r.len));
    // The process's memory changes after the snapshot (its first region overwritten).
    const mem = openSync(`/proc/${pid}/mem`, 'r+');
    writeSync(mem, Buffer.alloc(regions[0]!.len, 0xaa), 0, regions[0]!.len, regions[0]!.start);
    closeSync(mem);
    expect(readProcessMemory(pid, regions[0]!.start, regions[0]!.len).equals(before[0]!)).toBe(false);

    const post = (body: unknown) => fetch(url('restorer', '/restores'), { method: 'POST', headers: auth, body: JSON.stringify(body) });
    expect((await post({ tenant, snapshot: snap!.id, format: 'live' })).status).toBe(400); // which process?
    const started = await post({ tenant, snapshot: snap!.id, format: 'live', pid });
    expect(started.status).toBe(201);
    const { id } = (await started.json()) as { id: string };
    let job: { state: string; error?: unknown; result?: { frozenMs: number; verifiedPages: number; untouchedChecked: number; pages: { data: number } } } | undefined;
    await until('the live restore job', async () => {
      job = (await (await fetch(url('restorer', `/restores/${id}`), { headers: auth })).json()) as typeof job;
      return job!.state === 'running' ? undefined : true;
    });
    expect(job!.error).toBeUndefined();
    expect(job!.state).toBe('done');
    expect(job!.result!.frozenMs).toBeGreaterThan(0);
    expect(job!.result!.verifiedPages).toBeGreaterThanOrEqual(job!.result!.pages.data);
    // Pages the process had never touched when captured, and were overwritten since: zeroed again.
    expect(job!.result!.untouchedChecked).toBeGreaterThan(0);
    expect(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]).not.toBe('T');
    regions.forEach((r, i) => expect(readProcessMemory(pid, r.start, r.len).equals(before[i]!), `region ${i}`).toBe(true));
  });

  it('take a pre-copy snapshot: live rounds, then a frozen one, counted in the agent\'s metrics', async () => {
    const res = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: JSON.stringify({ pid: src.info.pid, mode: 'pre-copy' }) });
    expect(res.status).toBe(201);
    const [job] = (await res.json()) as { id: string }[];
    const done = await until('the pre-copy job', async () => {
      const j = (await (await fetch(url('agent', `/snapshots/${job!.id}`), { headers: auth })).json()) as { state: string; rounds?: number; snapshots?: string[]; error?: unknown };
      if (j.state === 'failed') throw new Error(JSON.stringify(j.error));
      return j.state === 'sent' ? j : undefined;
    });
    // At least a live round and the frozen last one, each a snapshot of its own.
    expect(done.rounds).toBeGreaterThanOrEqual(2);
    expect(done.snapshots).toHaveLength(done.rounds!);
    expect(new Set(done.snapshots).size).toBe(done.rounds);
    const metrics = await (await fetch(url('agent', '/metrics'))).text();
    expect(metrics).toMatch(/^pagevault_agent_precopy_rounds_count 1$/m);
    expect(Number(/^pagevault_agent_precopy_rounds_sum (\S+)$/m.exec(metrics)?.[1])).toBe(done.rounds);
    // Its last round commits like any snapshot: the frozen pre-copy round, an incremental of the one before.
    const [before, last] = done.snapshots!.slice(-2);
    const m = await until('the last round\'s manifest', async () => {
      const r = await fetch(url('restorer', `/tenants/${tenant}/snapshots/${last}`), { headers: auth });
      return r.ok ? ((await r.json()) as Manifest) : undefined;
    });
    expect(m.parentId).toBe(before);
    expect(m.consistency).toBe('precopy');
  });

  it('take a group over HTTP: frozen together, a snapshot each with the job as group id, thawed, then an incremental group', async () => {
    const a = await startMemtarget<SourceInfo>(['source']);
    const b = await startMemtarget<SourceInfo>(['source']);
    try {
      const pids = [a.info.pid, b.info.pid];
      type GroupJob = { id: string; state: string; members?: { pid: number; snapshot: string; stats?: { dataPages: number; parentPages: number; freezeMs: number } }[]; error?: unknown };
      const runGroup = async (parent?: string) => {
        const res = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: JSON.stringify({ pids, group: true, ...(parent ? { parent } : {}) }) });
        expect(res.status).toBe(201);
        const jobs = (await res.json()) as { id: string }[];
        expect(jobs).toHaveLength(1);
        return until('the group job', async () => {
          const j = (await (await fetch(url('agent', `/snapshots/${jobs[0]!.id}`), { headers: auth })).json()) as GroupJob;
          if (j.state === 'failed') throw new Error(JSON.stringify(j.error));
          return j.state === 'sent' ? j : undefined;
        });
      };
      const manifest = (id: string) => until(`manifest ${id}`, async () => {
        const r = await fetch(url('restorer', `/tenants/${tenant}/snapshots/${id}`), { headers: auth });
        return r.ok ? ((await r.json()) as Manifest) : undefined;
      });
      const cold = await runGroup();
      expect(cold.members!.map((m) => m.pid).sort()).toEqual([...pids].sort());
      // One freeze for both: the same downtime reported by each member.
      expect(new Set(cold.members!.map((m) => m.stats!.freezeMs)).size).toBe(1);
      for (const m of cold.members!) {
        expect(m.stats!.dataPages).toBeGreaterThan(50);
        const man = await manifest(m.snapshot);
        expect(man.groupId).toBe(cold.id);
        expect(man.pid).toBe(m.pid);
      }
      // Thawed: both run again (state not T).
      for (const pid of pids) expect(/^\d+ \(.*\) T/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))).toBe(false);
      // The next group names the first: each member is an incremental against its pid's snapshot there.
      const incr = await runGroup(cold.id);
      for (const m of incr.members!) {
        const before = cold.members!.find((c) => c.pid === m.pid)!;
        expect(m.stats!.parentPages).toBeGreaterThan(50);
        expect((await manifest(m.snapshot)).parentId).toBe(before.snapshot);
      }
    } finally {
      await a.stop();
      await b.stop();
    }
  });

  it('take a process tree, then a cgroup, as groups over HTTP: every member, one group id, all thawed', async (ctx) => {
    const t = await startFixture(); // a process and its forked child
    const mount = cgroup2Mount();
    const name = `pagevault-svc-${tag}`;
    let moved = false;
    try {
      const group = async (body: unknown) => {
        const res = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: JSON.stringify(body) });
        expect(res.status).toBe(201);
        const [job] = (await res.json()) as { id: string }[];
        return until('the group job', async () => {
          const j = (await (await fetch(url('agent', `/snapshots/${job!.id}`), { headers: auth })).json()) as { id: string; state: string; members?: { pid: number; snapshot: string }[]; error?: unknown };
          if (j.state === 'failed') throw new Error(JSON.stringify(j.error));
          return j.state === 'sent' ? j : undefined;
        });
      };
      const check = async (j: { id: string; members?: { pid: number; snapshot: string }[] }) => {
        expect(j.members!.map((m) => m.pid).sort()).toEqual([t.info.pid, t.info.child].sort());
        for (const m of j.members!) {
          const man = await until(`manifest ${m.snapshot}`, async () => {
            const r = await fetch(url('restorer', `/tenants/${tenant}/snapshots/${m.snapshot}`), { headers: auth });
            return r.ok ? ((await r.json()) as Manifest) : undefined;
          });
          expect(man.groupId).toBe(j.id);
        }
        for (const pid of [t.info.pid, t.info.child]) expect(/^\d+ \(.*\) T/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))).toBe(false);
      };
      await check(await group({ tree: t.info.pid }));
      // The same two processes in a cgroup of their own, named relative to the mount.
      if (!mount) return ctx.skip();
      try {
        mkdirSync(join(mount, name));
        for (const pid of [t.info.pid, t.info.child]) writeFileSync(join(mount, name, 'cgroup.procs'), String(pid));
        moved = true;
      } catch {
        return ctx.skip();
      }
      await check(await group({ cgroup: name }));
    } finally {
      if (moved) for (const pid of [t.info.pid, t.info.child]) writeFileSync(join(mount!, 'cgroup.procs'), String(pid));
      await t.stop();
      if (moved) rmdirSync(join(mount!, name));
    }
  });

  it('refuse a request that names its targets twice, a live group, or a cgroup outside the hierarchy', async () => {
    const post = async (body: unknown) => {
      const r = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as { code: string; message: string } };
    };
    for (const [body, message] of [
      [{ pid: src.info.pid, tree: src.info.pid }, /exactly one of pid, pids, tree or cgroup, not pid and tree/],
      [{}, /exactly one of pid, pids, tree or cgroup/],
      [{ pids: [src.info.pid], group: true, mode: 'live' }, /a group is captured frozen/],
      [{ cgroup: '/etc' }, /not under the cgroup v2 mount/],
      [{ cgroup: '../../etc' }, /not under the cgroup v2 mount/],
      // A misspelt parent would otherwise be a full snapshot nobody asked for.
      [{ pid: src.info.pid, parnet: 'latest' }, /^unknown field parnet \(known: pid, pids, group, tree, cgroup, mode, parent\)$/],
      [[src.info.pid], /the request body must be a JSON object/],
      [{ pids: [src.info.pid, src.info.pid] }, new RegExp(`pid ${src.info.pid} is listed twice`)],
      [{ pids: [src.info.pid, 0] }, /pid must be a positive integer, not 0/],
      // Wrong types are refused, not taken for absent: "true" is no group, 123 no parent, "" no mode.
      [{ pids: [src.info.pid], group: 'true' }, /group must be true or false, not "true"/],
      [{ pid: src.info.pid, group: true }, /group goes with pids/],
      [{ pid: src.info.pid, mode: '' }, /mode must be default, live or pre-copy, not ""/],
      [{ pid: src.info.pid, parent: 123 }, /parent must be a job id \(32 hex digits\), not 123/],
      [{ pids: [src.info.pid, src.info.pid], group: true }, new RegExp(`pid ${src.info.pid} is listed twice`)],
      [{ pid: 1e20 }, /pid must be a positive integer/],
      // A thread of the agent itself: a SIGSTOP to it would stop the agent.
      [{ pid: threadOf(procs[0]!.pid!) }, new RegExp(`is a thread of this process \\(pagevault itself\\)`)],
    ] as const) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body.code).toBe('PV_INVALID_ARGUMENT');
      expect(r.body.message).toMatch(message);
    }
    const r = await post({ pids: [src.info.pid], group: true, parent: '0'.repeat(32) });
    expect(r.body.code).toBe('PV_PARENT_MISSING');
    // A pid gone late in the list starts none of them (404, no job).
    const gone = await post({ pids: [src.info.pid, 0x3fffffff] });
    expect([gone.status, gone.body.code]).toEqual([404, 'PV_NO_SUCH_PROCESS']);
    // Our pid namespace's init, which SIGSTOP does not stop (not alone in a cgroup here): known at once.
    const init = await post({ pid: 1 });
    expect([init.status, init.body.code, init.body.message]).toEqual([409, 'PV_FREEZE_FAILED', expect.stringContaining('init of this pid namespace')]);
    // A traced process cannot be frozen: 409 naming the tracer, no job (a --live one would be taken).
    const traced = spawn('sleep', ['60']);
    const gdb = spawn('gdb', ['-q', '-nx', '-batch', '-p', String(traced.pid), '-ex', 'shell sleep 60'], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 400 && !/^TracerPid:\s*[1-9]/m.test(readFileSync(`/proc/${traced.pid}/status`, 'utf8')); i++) await new Promise((res) => setTimeout(res, 25));
      const refused = await post({ pid: traced.pid });
      expect([refused.status, refused.body.code]).toEqual([409, 'PV_FREEZE_FAILED']);
      expect(refused.body.message).toMatch(/is being traced by process \d+ \(gdb\)/);
    } finally {
      gdb.kill('SIGKILL');
      traced.kill('SIGKILL');
    }
    // A value nested thousands deep is a 400 with a short message, not a 500 of a blown stack.
    const deep = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: `{"pid":${'['.repeat(5000)}${']'.repeat(5000)}}` });
    const deepBody = (await deep.json()) as { code: string; message: string };
    expect([deep.status, deepBody.code]).toEqual([400, 'PV_INVALID_ARGUMENT']);
    expect(deepBody.message.length).toBeLessThan(200);
  });

  it('answer a bad request body with 4xx PV_INVALID_ARGUMENT, and read no body without the token', async () => {
    const raw = async (app: 'agent' | 'restorer', path: string, body: string, headers: Record<string, string> = auth) => {
      const r = await fetch(url(app, path), { method: 'POST', headers, body });
      return { status: r.status, code: ((await r.json()) as { code: string }).code };
    };
    expect(await raw('agent', '/snapshots', '{"pid": ')).toEqual({ status: 400, code: 'PV_INVALID_ARGUMENT' });
    // The parser's refusals have every field a PvError's body has.
    const parsed = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: '{"pid": ' });
    expect(await parsed.json()).toEqual({ code: 'PV_INVALID_ARGUMENT', message: expect.any(String), retriable: false });
    expect(await raw('agent', '/snapshots', JSON.stringify({ pid: 1, parent: 'x'.repeat(100_000) }))).toEqual({ status: 413, code: 'PV_INVALID_ARGUMENT' });
    expect(await raw('restorer', '/restores', '{}', { ...auth, 'content-type': 'application/json; charset=latin-7' })).toEqual({ status: 415, code: 'PV_INVALID_ARGUMENT' });
    expect(await raw('restorer', '/restores', 'tenant=x', { ...auth, 'content-type': 'text/plain' })).toEqual({ status: 400, code: 'PV_INVALID_ARGUMENT' });
    // Without the token: 401 before the body is parsed (a malformed one is not even looked at).
    expect((await raw('agent', '/snapshots', '{"pid": ', { 'content-type': 'application/json' })).status).toBe(401);
    const unauth = await fetch(url('agent', '/snapshots'), { method: 'POST', body: '{}' });
    expect([unauth.status, unauth.headers.get('connection'), unauth.headers.get('www-authenticate')]).toEqual([401, 'close', 'Bearer']);
    const lower = await fetch(url('agent', '/snapshots/x'), { headers: { authorization: auth.authorization!.replace('Bearer', 'bearer') } });
    expect(lower.status).not.toBe(401); // the scheme in any case (RFC 7235)
  });

  it('are ready when their dependencies answer, and say which does not (refused, or hanging) within seconds', async () => {
    for (const app of ['agent', 'compactor', 'restorer'] as const) expect([app, (await fetch(url(app, '/readyz'))).status]).toEqual([app, 200]);
    // A restorer whose bucket refuses connections, then one whose bucket accepts them and never answers.
    const silent = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = ports.restorer + 100;
    try {
      for (const [endpoint, why] of [['http://127.0.0.1:1', /^object store: /], [`http://127.0.0.1:${(silent.address() as AddressInfo).port}`, /^object store: no answer within 3000 ms$/]] as const) {
        const p = spawn(process.execPath, [resolve(root, 'apps/restorer/dist/main.js')], { env: { ...env, PV_HTTP_PORT: String(port), PV_S3_ENDPOINT: endpoint }, stdio: ['ignore', 'ignore', 'ignore'] });
        try {
          await until('restorer /healthz', async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined));
          const t0 = Date.now();
          const r = await fetch(`http://127.0.0.1:${port}/readyz`);
          const body = (await r.json()) as { status: string; reason: string; code: string; retriable: boolean };
          expect([r.status, body.status, body.code, body.retriable]).toEqual([503, 'not ready', 'PV_NOT_READY', true]);
          expect(body.reason).toMatch(why);
          expect(Date.now() - t0).toBeLessThan(10_000);
        } finally {
          p.kill('SIGKILL');
          await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
        }
      }
    } finally {
      silent.close();
    }
  }, 60_000);

  it('answer /healthz and /readyz (naming Kafka) from a compactor started while Kafka cannot be reached', async () => {
    const port = ports.restorer + 300; // beside every port the suite's services use
    const p = spawn(process.execPath, [resolve(root, 'apps/compactor/dist/main.js')], {
      env: { ...env, PV_HTTP_PORT: String(port), PV_KAFKA_BROKERS: '127.0.0.1:1', PV_COMPACTOR_GROUP: `pv-it-nokafka-${tenant}` }, stdio: ['ignore', 'ignore', 'ignore'],
    });
    try {
      const t0 = Date.now();
      await until('compactor /healthz', async () => ((await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined))?.ok ? true : undefined), 30_000);
      const r = await fetch(`http://127.0.0.1:${port}/readyz`);
      const body = (await r.json()) as { code: string; reason: string };
      expect([r.status, body.code]).toEqual([503, 'PV_NOT_READY']);
      expect(body.reason).toMatch(/kafka: /);
      expect(Date.now() - t0).toBeLessThan(30_000); // its start gives up only after ~90 s of retries
    } finally {
      p.kill('SIGKILL');
      await new Promise((res) => (p.exitCode !== null ? res(null) : p.once('exit', res)));
    }
  }, 60_000);

  it('end a snapshot the agent was running when told to stop (SIGTERM) with an abort frame: failed at once, not after the timeout', async () => {
    const big = spawn('python3', ['-c', 'import os, sys\nb = bytearray(os.urandom(1 << 30))\nprint(os.getpid(), flush=True)\nsys.stdin.readline()'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const port = ports.restorer + 200; // beside every port the suite's services use
    const agent = spawn(process.execPath, [resolve(root, 'apps/agent/dist/main.js')], { env: { ...env, PV_HTTP_PORT: String(port) }, stdio: ['ignore', 'ignore', 'inherit'] });
    try {
      const pid = Number(await new Promise<string>((r) => big.stdout.once('data', (d: Buffer) => r(d.toString().trim()))));
      await until('agent /healthz', async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined));
      const r = await fetch(`http://127.0.0.1:${port}/snapshots`, { method: 'POST', headers: auth, body: JSON.stringify({ pid }) });
      const [job] = (await r.json()) as { id: string }[];
      expect(r.status, JSON.stringify(job)).toBe(201);
      // Mid-capture: its first frames written (a 1 GiB capture then runs for most of a second more).
      for (let i = 0; ; i++) {
        const j = (await (await fetch(`http://127.0.0.1:${port}/snapshots/${job!.id}`, { headers: auth })).json()) as { state: string; progress?: { phase: string; frames: number } };
        expect([j.state, i < 3000], JSON.stringify(j)).toEqual(['running', true]);
        if (j.progress?.phase === 'capturing' && j.progress.frames > 0) break;
        await new Promise((res) => setTimeout(res, 5));
      }
      agent.kill('SIGTERM');
      expect(await new Promise((res) => agent.once('exit', (code, sig) => res(sig ?? code)))).toBe('SIGTERM');
      // The target runs (thawed), and the compactor records the snapshot failed for its abort, long before its 5-minute timeout.
      expect(readFileSync(`/proc/${pid}/stat`, 'utf8')).not.toMatch(/^\d+ \(.*\) T/);
      const failed = await until('the failed record', async () => {
        const o = await s3Store().get(`t/${tenant}/failed/${job!.id}.json`).catch(() => undefined);
        return o ? (JSON.parse(o.toString()) as { code: string; reason: string }) : undefined;
      }, 60_000);
      expect(failed.code).toBe('PV_STREAM_ABORTED');
      expect(failed.reason).toMatch(/the agent stopped \(SIGTERM\) mid-snapshot/);
    } finally {
      agent.kill('SIGKILL');
      big.kill('SIGKILL');
    }
  }, 150_000);

  it('answer a route asked with the wrong method with 405 and Allow, and the HTTP parser\'s refusals with a JSON body', async () => {
    const wrong = await fetch(url('agent', '/snapshots'), { method: 'GET', headers: auth });
    expect([wrong.status, wrong.headers.get('allow'), ((await wrong.json()) as { code: string }).code]).toEqual([405, 'POST', 'PV_HTTP']);
    const del = await fetch(url('restorer', `/tenants/${tenant}/snapshots/x`), { method: 'DELETE', headers: auth });
    expect([del.status, del.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
    // A path no route has is still 404, and the token still comes first.
    expect((await fetch(url('agent', '/nothing-here'), { headers: auth })).status).toBe(404);
    expect((await fetch(url('agent', '/snapshots'))).status).toBe(401);
    // Node's parser refuses headers over its limit before any route; the body is still JSON with a code.
    const big = await fetch(url('agent', '/snapshots/x'), { headers: { ...auth, 'x-filler': 'y'.repeat(20_000) } });
    expect([big.status, await big.json()]).toEqual([431, { code: 'PV_HTTP', message: expect.stringMatching(/headers larger than/), retriable: false }]);
  });

  it('refuse a restore at once (4xx, no job) for what can be known before it runs', async () => {
    const [m] = (await (await fetch(url('restorer', `/tenants/${tenant}/snapshots`), { headers: auth })).json()) as { snapshotId: string }[];
    const post = async (body: unknown) => {
      const r = await fetch(url('restorer', '/restores'), { method: 'POST', headers: auth, body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as { code: string; message: string } };
    };
    const restorer = procs[2]!.pid!;
    const userDir = mkdtempSync(join(tmpdir(), 'pv-svc-userdir-'));
    writeFileSync(join(userDir, 'important.txt'), 'keep');
    const existing = join(userDir, 'important.txt');
    for (const [body, status, message] of [
      [{ tenant: '../etc', snapshot: 'latest', format: 'raw', out: '/tmp/x' }, 400, /tenant/],
      [{ tenant, snapshot: 'f'.repeat(32), format: 'raw', out: '/tmp/x' }, 404, /f{32}/],
      [{ tenant, snapshot: m!.snapshotId, format: 'raw', out: '/tmp/x', replace: 'yes' }, 400, /replace must be true or false/],
      [{ tenant, snapshot: m!.snapshotId, format: 'live', pid: restorer }, 400, /is the restorer itself/],
      [{ tenant, snapshot: m!.snapshotId, format: 'raw', out: '/tmp/x', pid: 5 }, 400, /takes no pid/],
      [{ tenant, snapshot: 'latest:pid=1,pid=2', format: 'raw', out: '/tmp/x' }, 400, /names pid twice/],
      [{ tenant, snapshot: m!.snapshotId, format: 'stream', out: '/dev/null', replace: true }, 400, /character device/],
      [{ tenant, snapshot: m!.snapshotId, format: 'elf', out: join(userDir, 'no-such-dir', 'core') }, 400, /does not exist/],
      [{ tenant, snapshot: m!.snapshotId, format: 'elf', out: existing }, 400, /exists/],
      [{ tenant, snapshot: m!.snapshotId, format: 'elf', out: join(userDir, 'a\u0000b') }, 400, /not a path \(it holds a NUL byte\)/],
      // A directory of someone's files is never replaced by a raw restore, even when asked to.
      [{ tenant, snapshot: m!.snapshotId, format: 'raw', out: userDir, replace: true }, 400, /no layout.json/],
      [{ tenant, snapshot: m!.snapshotId, format: 'live', pid: 0x3fffffff }, 404, /no process/],
      [{ tenant, snapshot: m!.snapshotId, format: 'live', pid: threadOf(restorer) }, 400, /is a thread of this process/],
    ] as const) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.message).toMatch(message);
    }
    expect(execFileSync('stat', ['-c', '%F', '/dev/null'], { encoding: 'utf8' }).trim()).toBe('character special file');
    expect(readFileSync(existing, 'utf8')).toBe('keep');
    expect(readFileSync(`/proc/${restorer}/stat`, 'utf8').replace(/^.*\) /s, '')[0]).not.toBe('T');
    // The stream of a snapshot heeds its filter too: never another process's memory.
    const stream = await fetch(url('restorer', `/tenants/${tenant}/snapshots/latest/stream?pid=9`), { headers: auth });
    expect(stream.status).toBe(404);
    await stream.arrayBuffer();
    // An empty filter is refused, never taken for none (it served another process's stream).
    for (const q of ['pid=', 'host=', 'tag=']) {
      const empty = await fetch(url('restorer', `/tenants/${tenant}/snapshots/latest/stream?${q}`), { headers: auth });
      expect([empty.status, ((await empty.json()) as { message: string }).message]).toEqual([400, `${q.slice(0, -1)} is empty: give a value, or leave it out to not filter by ${q.slice(0, -1)}`]);
    }
    const misspelt = await fetch(url('restorer', `/tenants/${tenant}/snapshots?PID=${src.info.pid}`), { headers: auth });
    expect([misspelt.status, ((await misspelt.json()) as { message: string }).message]).toEqual([400, 'unknown query parameter PID (known: host, pid, tag)']);
    rmSync(userDir, { recursive: true, force: true });
  });

  it('list around a damaged manifest, and answer for it with PV_OBJECT_CORRUPT', async () => {
    const before = (await (await fetch(url('restorer', `/tenants/${tenant}/snapshots`), { headers: auth })).json()) as { snapshotId: string }[];
    expect(before.length).toBeGreaterThan(0);
    const id = randomBytes(16).toString('hex');
    const store = s3Store();
    await store.put(`t/${tenant}/snapshots/${id}.json`, Buffer.from('{"format": "pagevault.manifest.v1", "snaps'));
    try {
      const r = await fetch(url('restorer', `/tenants/${tenant}/snapshots`), { headers: auth });
      expect(r.status).toBe(200);
      expect(((await r.json()) as { snapshotId: string }[]).map((m) => m.snapshotId)).toEqual(before.map((m) => m.snapshotId));
      const one = await fetch(url('restorer', `/tenants/${tenant}/snapshots/${id}`), { headers: auth });
      expect(one.status).toBeGreaterThanOrEqual(400);
      expect(((await one.json()) as { code: string }).code).toBe('PV_OBJECT_CORRUPT');
      // "latest" is the latest readable snapshot: the damaged one does not take the tenant down.
      const latest = await fetch(url('restorer', `/tenants/${tenant}/snapshots/latest`), { headers: auth });
      expect(latest.status).toBe(200);
      expect(before.map((m) => m.snapshotId)).toContain(((await latest.json()) as { snapshotId: string }).snapshotId);
    } finally {
      await store.delete(`t/${tenant}/snapshots/${id}.json`);
    }
  });

  it('stop sending a stream whose client went away, and count the streams in progress', async () => {
    // 48 MiB of random bytes: far more than the sockets between the two processes hold.
    const big = spawn(process.execPath, ['-e', "globalThis.keep = require('node:crypto').randomBytes(48 << 20); console.log('ready'); setInterval(() => {}, 1e6);"], { stdio: ['ignore', 'pipe', 'inherit'] });
    let snap: { id: string } | undefined;
    try {
      await new Promise((r) => createInterface({ input: big.stdout! }).once('line', r));
      const res = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: JSON.stringify({ pid: big.pid }) });
      [snap] = (await res.json()) as { id: string }[];
      await until('the manifest', async () => ((await fetch(url('restorer', `/tenants/${tenant}/snapshots/${snap!.id}`), { headers: auth })).ok ? true : undefined));
    } finally {
      big.kill('SIGKILL');
    }
    const active = async () => /^pagevault_restorer_streams_active (\S+)$/m.exec(await (await fetch(url('restorer', '/metrics'))).text())?.[1];
    expect(await active()).toBe('0');

    const abort = new AbortController();
    const stream = await fetch(url('restorer', `/tenants/${tenant}/snapshots/${snap!.id}/stream`), { headers: auth, signal: abort.signal });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    expect((await reader.read()).value!.length).toBeGreaterThan(0);
    expect(await active()).toBe('1'); // sending, held up by a client that reads no more
    abort.abort();
    await until('the stream to end', async () => ((await active()) === '0' ? true : undefined), 20_000);
  });

  it('cut off a stream whose client stops reading, and log why a stream failed after its first bytes, naming the missing pack', async () => {
    // A tenant of its own (its pack is deleted below), filled by the CLI on the same bucket; a restorer of
    // its own whose log is read, with a stall limit of 2 s.
    const own = `${tenant}-stall`;
    const big = spawn(process.execPath, ['-e', "globalThis.keep = require('node:crypto').randomBytes(48 << 20); console.log('ready'); setInterval(() => {}, 1e6);"], { stdio: ['ignore', 'pipe', 'inherit'] });
    let id: string;
    try {
      await new Promise((r) => createInterface({ input: big.stdout! }).once('line', r));
      const r = spawnSync(process.execPath, [resolve(root, 'apps/cli/dist/main.js'), '--s3', '--tenant', own, '--json', 'snapshot', String(big.pid)], { env, encoding: 'utf8', timeout: 120_000 });
      expect(r.status, r.stderr).toBe(0);
      id = (JSON.parse(r.stdout) as { snapshotId: string }[])[0]!.snapshotId;
    } finally {
      big.kill('SIGKILL');
    }
    const port = ports.restorer + 200;
    const p = spawn(process.execPath, [resolve(root, 'apps/restorer/dist/main.js')], { env: { ...env, PV_HTTP_PORT: String(port), PV_STREAM_STALL_SECONDS: '2' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let log = ''; // JSON lines on stdout (pino), anything else on stderr
    for (const s of [p.stdout!, p.stderr!]) s.setEncoding('utf8').on('data', (d: string) => (log += d));
    const streamPath = `/tenants/${own}/snapshots/${id}/stream`;
    const store = s3Store();
    try {
      await until('restorer /healthz', async () => ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok ? true : undefined));
      // A client that sends its request and then reads nothing, connection open.
      const active = async () => /^pagevault_restorer_streams_active (\S+)$/m.exec(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text())?.[1];
      const sock = connect(port, '127.0.0.1');
      sock.on('error', () => undefined);
      sock.write(`GET ${streamPath} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`);
      sock.pause();
      await until('the stream to start', async () => ((await active()) === '1' ? true : undefined), 30_000);
      await until('the stalled stream to be cut', async () => (log.includes(`the client of the stream of ${id} read nothing for 2 s: the stream is cut`) ? true : undefined), 30_000);
      expect(await active()).toBe('0');
      sock.destroy();
      // One of the snapshot's packs deleted: the stream starts (200), then ends early; the log names the pack.
      const packs: string[] = [];
      for await (const o of store.list(`t/${own}/packs/`)) packs.push(o.key);
      expect(packs.length).toBeGreaterThan(0);
      await store.delete(packs[0]!);
      const res = await fetch(`http://127.0.0.1:${port}${streamPath}`, { headers: auth });
      expect(res.status).toBe(200);
      await expect(res.arrayBuffer()).rejects.toThrow();
      await until('the failure in the log', async () => (log.includes(packs[0]!) ? true : undefined), 10_000);
      expect(log).toMatch(new RegExp(`the stream of ${id} failed after it began: PV_OBJECT_NOT_FOUND: .*${packs[0]}`));
    } finally {
      p.kill('SIGKILL');
      await new Promise((r) => (p.exitCode !== null ? r(null) : p.once('exit', r)));
      for await (const o of store.list(`t/${own}/`)) await store.delete(o.key);
    }
  }, 180_000);

  it('answer unknown snapshots and processes with their specific errors', async () => {
    const r = await fetch(url('restorer', `/tenants/${tenant}/snapshots/${'0'.repeat(32)}`), { headers: auth });
    expect(r.status).toBe(404);
    expect(((await r.json()) as { code: string }).code).toBe('PV_UNKNOWN_SNAPSHOT');
    const typo = await fetch(url('restorer', `/tenants/${tenant}/snapshots/lastest`), { headers: auth });
    expect([typo.status, ((await typo.json()) as { code: string }).code]).toEqual([400, 'PV_INVALID_ARGUMENT']);
    // Known before any job starts: the request's own error.
    const res = await fetch(url('agent', '/snapshots'), { method: 'POST', headers: auth, body: JSON.stringify({ pid: 999999999 }) });
    expect([res.status, ((await res.json()) as { code: string }).code]).toEqual([404, 'PV_NO_SUCH_PROCESS']);
    // A job id neither service gave out: its own code, not an unknown snapshot's.
    for (const [app, path] of [['restorer', '/restores/nosuchjob'], ['agent', '/snapshots/nosuchjob']] as const) {
      const j = await fetch(url(app, path), { headers: auth });
      expect([app, j.status, ((await j.json()) as { code: string; message: string }).code]).toEqual([app, 404, 'PV_UNKNOWN_JOB']);
    }
  });

  it('refuse a restore job with a misspelt field or without its snapshot, starting nothing', async () => {
    const post = async (body: unknown) => {
      const r = await fetch(url('restorer', '/restores'), { method: 'POST', headers: auth, body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as { code: string; message: string } };
    };
    const out = join(tmpdir(), `pv-svc-refused-${tag}`);
    for (const [body, message] of [
      [{ tenant, snapshot: 'latest', format: 'raw', out, replcae: true }, /^unknown field replcae \(known: tenant, snapshot, format, out, pid, replace, allowMissingFiles\)$/],
      [{ tenant, format: 'raw', out }, /a restore needs tenant and snapshot/],
      [{ tenant, snapshot: 'latest', format: 'tar', out }, /format must be stream, raw, elf or live, not "tar"/],
      [{ tenant, snapshot: 'latest', format: 'raw', out, allowMissingFiles: 'yes' }, /allowMissingFiles must be true or false, not "yes"/],
    ] as const) {
      const r = await post(body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.body).toMatchObject({ code: 'PV_INVALID_ARGUMENT' });
      expect(r.body.message).toMatch(message);
    }
    expect(existsSync(out)).toBe(false);
  });
});
