'use strict';
// The embedded pipeline as `pagevault demo` (or a program embedding it) runs it: the CLI's context (a
// directory store) keeping the page tables of its snapshots in memory, its Pipeline (an in-process frame
// log with a CompactionService in this process) and takeSnapshot, which times a snapshot from its start
// (freeze inside) until its manifest is committed. PV_BENCH_EMBEDDED_TABLES=store: incrementals rebuild
// their parent's table from the store, as a one-shot `pagevault snapshot --parent` does.
const { openContext, Pipeline, takeSnapshot } = require('@pagevault/cli');

module.exports = async ({ storeDir, tenant }) => {
  const keepPageHashes = process.env.PV_BENCH_EMBEDDED_TABLES !== 'store';
  const ctx = openContext({ store: storeDir, tenant, host: 'bench', keepPageHashes });
  const pipe = new Pipeline(ctx);
  await pipe.start();
  // The warm-up goes to a tenant of its own over the same store and pipeline: nothing of it is counted.
  const warmTenant = `${tenant}-warm`;
  const warm = { ...ctx, tenantName: warmTenant, tenant: () => ctx.repo.tenant(warmTenant) };
  return {
    // A cold snapshot and an incremental of it: each path compiled before anything is timed.
    async warmup({ pid }) {
      const cold = await takeSnapshot(warm, pipe, { pid });
      await takeSnapshot(warm, pipe, { pid, parent: cold.manifest.snapshotId });
    },
    async snapshot({ pid, parent }) {
      const r = await takeSnapshot(ctx, pipe, { pid, ...(parent ? { parent } : {}) });
      const { skippedByReason: _s, ...capture } = r.capture;
      return { id: r.manifest.snapshotId, ms: r.ms, counts: r.manifest.counts, frames: r.frames, frameBytes: r.frameBytes, capture };
    },
    close: () => pipe.stop(),
  };
};
