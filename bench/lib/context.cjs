'use strict';
// The context every phase shares: settings, scratch space, the S3 bucket, restic repositories, the
// embedded pipeline and the fleet (agent + compactor processes), and the cleanups run at the end. All a
// run creates is named after its id and removed by cleanup() unless PV_BENCH_KEEP=1.
const { mkdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { openObjectStore } = require('@pagevault/runtime');
const { startWorker } = require('./rpc.cjs');
const { Restic } = require('./peers.cjs');
const { createBucket, dropBucket, s3, removeKafka, startGroupAt, topicEnds } = require('./services.cjs');
const { startTiny } = require('./targets.cjs');

const say = (s) => process.stdout.write(`[bench] ${s}\n`);

/** Everything the phases share: settings, scratch space, the services and the cleanups to run at the end. */
function makeContext({ cfg, runId, services }, rec) {
  const scratch = `/tmp/pv-bench-${runId}`;
  mkdirSync(scratch, { recursive: true });
  const deferred = [];
  const s3config = {
    kind: 's3', endpoint: services.s3.PV_S3_ENDPOINT, bucket: services.s3.PV_S3_BUCKET, region: services.s3.PV_S3_REGION,
    accessKeyId: services.s3.PV_S3_ACCESS_KEY, secretAccessKey: services.s3.PV_S3_SECRET_KEY,
  };
  const topic = `pv-bench-${runId}`;
  const kafkaTopics = [];
  let fleet;
  const ctx = {
    cfg, runId, rec, scratch, s3config, s3: s3(services.s3), brokers: services.brokers,
    tenant: (w) => `bench-${runId}-${w}`,
    defer: (fn) => deferred.push(fn),

    async restic(workload) {
      const r = new Restic({
        bin: cfg.restic, endpoint: services.s3.PV_S3_ENDPOINT, bucket: services.s3.PV_S3_BUCKET, prefix: `bench-restic-${runId}/${workload}`,
        accessKey: services.s3.PV_S3_ACCESS_KEY, secretKey: services.s3.PV_S3_SECRET_KEY, cacheDir: join(scratch, 'restic-cache'), tmp: scratch,
      });
      await r.init();
      return r;
    },

    /** Bytes under a prefix of a directory store. */
    async dirUsage(dir, prefix) {
      let bytes = 0;
      let objects = 0;
      for await (const o of openObjectStore({ kind: 'dir', dir }).list(prefix)) (bytes += o.size), objects++;
      return { objects, bytes };
    },

    /**
     * An embedded pipeline (the CLI's) in a process of its own, warmed up on a tiny process: a cold
     * snapshot and an incremental of it, so neither path's first run (JIT compilation) is timed.
     */
    async embedded(storeDir, tenant, execArgv = []) {
      const w = await startWorker('embedded', { storeDir, tenant }, { execArgv });
      const tiny = await startTiny();
      try {
        await w.call('warmup', { pid: tiny.pid });
      } finally {
        await tiny.stop();
      }
      return w;
    },

    /** A fleet: compactor and agent processes on a topic of this run, warmed up (group joined). */
    async startFleet({ suffix = '', agentArgv = [], compactorArgv = [] } = {}) {
      const t = suffix ? `${topic}-${suffix}` : topic;
      const groupId = `${t}-compactors`;
      kafkaTopics.push({ topic: t, groupId });
      const done = new Map();
      const waiters = new Map();
      const settle = (id) => {
        const w = waiters.get(id);
        const e = done.get(id);
        if (!w || !e) return;
        waiters.delete(id);
        if (e.event === 'committed') w.resolve(e.data);
        else w.reject(new Error(`snapshot ${id} failed in the compactor: ${e.data.code}: ${e.data.reason}`));
      };
      const onEvent = (event, data) => {
        if (event !== 'committed' && event !== 'failed') return;
        done.set(data.id, { event, data });
        settle(data.id);
      };
      const kafka = { brokers: services.brokers, topic: t, partitions: 2 };
      // PV_BENCH_COMPACTOR_PROF=<dir>: every fleet compactor also writes CPU profiles there (by hand, to see
      // where a series' time goes; the figures of such a run are not the suite's).
      const prof = process.env.PV_BENCH_COMPACTOR_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PV_BENCH_COMPACTOR_PROF}`, '--cpu-prof-interval=1000'] : [];
      const compactor = await startWorker('compactor', { kafka, store: s3config, groupId }, { onEvent, execArgv: [...compactorArgv, ...prof] });
      const agent = await startWorker('agent', { kafka }, { execArgv: [...agentArgv, ...(process.env.PV_BENCH_AGENT_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PV_BENCH_AGENT_PROF}`, '--cpu-prof-interval=1000'] : [])] });
      const committed = (id) => new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`snapshot ${id} was not committed within 15 min`)), 15 * 60_000);
        waiters.set(id, { resolve: (v) => (clearTimeout(timer), resolve(v)), reject: (e) => (clearTimeout(timer), reject(e)) });
        settle(id);
      });
      const logicalOf = (c) => (c.counts.dataPages + c.counts.zeroPages) * c.pageSize;
      const pair = {
        kafka,
        async snapshot(pid, tenant, parent) {
          const r = await agent.call('snapshot', { pid, tenant, ...(parent ? { parent } : {}) });
          const c = await committed(r.id);
          return { ...r, commit: c, e2eMs: c.wall - r.startWall, logicalBytes: logicalOf(c) };
        },
        async group(pids, tenant) {
          const r = await agent.call('group', { pids, tenant });
          const cs = await Promise.all(r.ids.map(committed));
          return { ...r, commits: cs, e2eMs: Math.max(...cs.map((c) => c.wall)) - r.startWall, logicalBytes: cs.reduce((n, c) => n + logicalOf(c), 0) };
        },
        async exit() {
          return { agent: await agent.exit(), compactor: await compactor.exit() };
        },
        kill() {
          agent.kill();
          compactor.kill();
        },
      };
      ctx.defer(() => pair.kill());
      const tiny = await startTiny();
      try {
        // Group joined, and the cold and incremental paths of agent and compactor compiled.
        const cold = await pair.snapshot(tiny.pid, ctx.tenant('warmup'));
        await pair.snapshot(tiny.pid, ctx.tenant('warmup'), cold.id);
      } finally {
        await tiny.stop();
      }
      return pair;
    },

    /**
     * Where the fleet's topic ends now: what replayCompactor starts from.
     */
    async fleetTopicEnds() {
      return topicEnds(services.brokers, (await ctx.fleet()).kafka.topic);
    },

    /**
     * The compactor alone: a compactor process of its own, in a consumer group of its own, replays the
     * fleet's topic from offsets `from` (fleetTopicEnds before the snapshot was taken) into an empty
     * bucket of its own (nothing to deduplicate against, as the fleet's compactor had when those frames
     * were new), while nothing else runs. Resolves once snapshot `untilId` is committed, with the time
     * from the first frame consumed and every commit.
     */
    async replayCompactor(from, untilId) {
      const { kafka } = await ctx.fleet();
      const env = await createBucket(services.s3, `pv-bench-replay-${runId}`.toLowerCase());
      ctx.defer(() => dropBucket(env));
      const commits = [];
      let firstWall;
      let resolve;
      let reject;
      const done = new Promise((res, rej) => ((resolve = res), (reject = rej)));
      const onEvent = (event, data) => {
        if (event === 'firstFrame') firstWall ??= data.wall;
        if (event === 'failed') reject(new Error(`replay: snapshot ${data.id} failed: ${data.code}: ${data.reason}`));
        if (event !== 'committed') return;
        commits.push(data);
        if (data.id === untilId) resolve();
      };
      const groupId = `${kafka.topic}-replay`;
      kafkaTopics.push({ topic: kafka.topic, groupId });
      await startGroupAt(services.brokers, groupId, kafka.topic, from);
      const store = { ...s3config, bucket: env.PV_S3_BUCKET };
      const w = await startWorker('compactor', { kafka, store, groupId }, { onEvent });
      const timer = setTimeout(() => reject(new Error(`replay: snapshot ${untilId} not committed within 10 min`)), 10 * 60_000);
      try {
        await done;
      } finally {
        clearTimeout(timer);
      }
      const usage = await w.exit();
      const last = commits.find((c) => c.id === untilId);
      return { ms: last.wall - firstWall, commits, usage };
    },

    /** The run's fleet, started on first use and kept for every workload. */
    async fleet() {
      fleet ??= ctx.startFleet();
      return fleet;
    },

    async cleanup() {
      if (fleet) {
        const f = await fleet.catch(() => undefined);
        const u = await f?.exit().catch(() => undefined);
        if (u) {
          rec.stage('fleet agent: capture → Kafka (peak over all workloads)', u.agent);
          rec.stage('fleet compactor: Kafka → S3 (peak over all workloads)', u.compactor);
        }
      }
      // Each cleanup is bounded: a stuck one must not keep the run from reporting.
      for (const fn of deferred.reverse()) {
        let timer;
        const limit = new Promise((resolve) => (timer = setTimeout(resolve, 30_000)));
        await Promise.race([Promise.resolve().then(fn).catch(() => undefined), limit]);
        clearTimeout(timer);
      }
      if (cfg.keep) return say(`kept ${scratch}, t/bench-${runId}-*, bench-restic-${runId}/ and topic ${topic}`);
      const removed = (await ctx.s3.remove(`t/bench-${runId}-`)) + (await ctx.s3.remove(`bench-restic-${runId}/`));
      say(`removed ${removed} objects of this run from s3://${services.s3.PV_S3_BUCKET}`);
      for (const k of kafkaTopics) await removeKafka(services.brokers, k.topic, k.groupId).catch((e) => say(`could not delete topic ${k.topic}: ${e.message}`));
      rmSync(scratch, { recursive: true, force: true });
    },
  };
  return ctx;
}

module.exports = { makeContext };
