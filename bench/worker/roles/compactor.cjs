'use strict';
// The fleet compactor, as apps/compactor runs it: a CompactionService consuming the topic and writing
// into the S3 bucket. Every commit is reported to the bench with its wall-clock time, and so is the first
// frame this process consumed (for a replay of a topic: when compaction started).
const { performance } = require('node:perf_hooks');
const { CompactionService } = require('@pagevault/compaction');
const { Repository } = require('@pagevault/repo');
const { openFrameLog, openObjectStore } = require('@pagevault/runtime');

module.exports = async ({ kafka, store, groupId }, emit) => {
  const log = openFrameLog({ kind: 'kafka', clientId: 'pv-bench-compactor', ...kafka });
  await log.ensureTopic();
  // As the compactor app reads them: PV_DELTA=0 stores pages whole (to compare), PV_RECENT_PAGES_MIB, PV_RECENT_MAPS_MIB.
  const mib = (name) => (process.env[name] ? Number(process.env[name]) * 2 ** 20 : undefined);
  const repoOpts = { delta: process.env.PV_DELTA !== '0', recentPagesBytes: mib('PV_RECENT_PAGES_MIB'), recentMapsBytes: mib('PV_RECENT_MAPS_MIB') };
  let firstFrame = false;
  const service = new CompactionService(log, new Repository(openObjectStore(store), repoOpts), {
    groupId,
    events: {
      frames: () => {
        if (!firstFrame) emit('firstFrame', { wall: performance.timeOrigin + performance.now() });
        firstFrame = true;
      },
      committed: (m) => emit('committed', { id: m.snapshotId, tenant: m.tenant, wall: performance.timeOrigin + performance.now(), counts: m.counts, pageSize: m.pageSize }),
      failed: (id, code, reason) => emit('failed', { id, code, reason }),
    },
  });
  await service.start();
  return { close: () => service.stop() };
};
