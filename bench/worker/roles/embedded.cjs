'use strict';
// The embedded pipeline exactly as `pagevault snapshot` runs it: the CLI's context (a directory store),
// its Pipeline (an in-process frame log with a CompactionService in this process) and takeSnapshot,
// which times a snapshot from its start (freeze inside) until its manifest is committed.
const { openContext } = require('@pagevault/cli/dist/context.js');
const { Pipeline } = require('@pagevault/cli/dist/pipeline.js');
const { takeSnapshot } = require('@pagevault/cli/dist/commands/snapshot.js');

module.exports = async ({ storeDir, tenant }) => {
  const ctx = openContext({ store: storeDir, tenant, host: 'bench' });
  const pipe = new Pipeline(ctx);
  await pipe.start();
  // The warm-up goes to a tenant of its own over the same store and pipeline: nothing of it is counted.
  const warmTenant = `${tenant}-warm`;
  const warm = { ...ctx, tenantName: warmTenant, tenant: () => ctx.repo.tenant(warmTenant) };
  return {
    warmup: async ({ pid }) => void (await takeSnapshot(warm, pipe, { pid })),
    async snapshot({ pid, parent }) {
      const r = await takeSnapshot(ctx, pipe, { pid, ...(parent ? { parent } : {}) });
      const { skippedByReason: _s, ...capture } = r.capture;
      return { id: r.manifest.snapshotId, ms: r.ms, counts: r.manifest.counts, frames: r.frames, frameBytes: r.frameBytes, capture };
    },
    close: () => pipe.stop(),
  };
};
