'use strict';
// The fleet compactor, as apps/compactor runs it: a CompactionService consuming the topic and writing
// into the S3 bucket. Every commit is reported to the bench with its wall-clock time.
const { performance } = require('node:perf_hooks');
const { CompactionService } = require('@pagevault/compaction');
const { Repository } = require('@pagevault/repo');
const { openFrameLog, openObjectStore } = require('@pagevault/runtime');

module.exports = async ({ kafka, store, groupId }, emit) => {
  const log = openFrameLog({ kind: 'kafka', clientId: 'pv-bench-compactor', ...kafka });
  await log.ensureTopic();
  const service = new CompactionService(log, new Repository(openObjectStore(store)), {
    groupId,
    events: {
      committed: (m) => emit('committed', { id: m.snapshotId, tenant: m.tenant, wall: performance.timeOrigin + performance.now(), counts: m.counts, pageSize: m.pageSize }),
      failed: (id, code, reason) => emit('failed', { id, code, reason }),
    },
  });
  await service.start();
  return { close: () => service.stop() };
};
