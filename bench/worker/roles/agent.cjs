'use strict';
// The fleet agent's work, as apps/agent does it: capture → frames → Kafka, one producer per job, page
// hashes kept (wantHashes) so the next snapshot of the pid can be an incremental against them. Returns
// when the frames are acknowledged by Kafka; the compactor (another process) commits the manifest.
const { performance } = require('node:perf_hooks');
const { captureGroup, captureSnapshot } = require('@pagevault/capture');
const { idFromHex, newSnapshotId } = require('@pagevault/format');
const { kafkaCompression, openFrameLog, spoolSetting } = require('@pagevault/runtime');
const { SnapshotStreams, shipSnapshot } = require('@pagevault/shipper');

const wall = () => performance.timeOrigin + performance.now();

module.exports = async ({ kafka }) => {
  // As apps/agent runs by default: frames spooled on local disk (PV_SPOOL_DIR, /var/tmp), so the target
  // thaws before Kafka has taken them, and compressed one by one for Kafka (PV_KAFKA_COMPRESSION=none: not).
  const log = openFrameLog({
    kind: 'kafka', clientId: 'pv-bench-agent', ...kafka, ...spoolSetting(process.env.PV_SPOOL_DIR || undefined, Number(process.env.PV_SPOOL_MEMORY_MIB || 64)),
    compression: kafkaCompression(process.env.PV_KAFKA_COMPRESSION),
  });
  await log.ensureTopic();
  const hashes = new Map(); // snapshot id → PageHashTable, for the next incremental
  return {
    async snapshot({ pid, tenant, parent }) {
      const startWall = wall();
      const producer = log.producer();
      try {
        const shipped = await shipSnapshot({
          producer, maxFrameBytes: log.maxFrameBytes,
          capture: (writer, drain) => captureSnapshot({
            pid, writer, drain, tenant, host: 'bench', wantHashes: true,
            ...(parent ? { parent: { id: idFromHex(parent), hashes: hashes.get(parent) } } : {}),
          }),
        });
        if (parent) hashes.delete(parent);
        hashes.set(shipped.snapshotId, shipped.stats.hashes);
        const { skippedByReason: _s, ...stats } = shipped.stats.stats;
        return { id: shipped.snapshotId, startWall, shippedWall: wall(), frames: shipped.frames, frameBytes: shipped.bytes, capture: stats };
      } finally {
        await producer.close().catch(() => undefined);
      }
    },

    /**
     * Several processes frozen together, one snapshot each with a common group id, as the agent's group
     * jobs (POST /snapshots {pids, group: true}) and the CLI's --group take them: spooled while frozen,
     * shipped once all are read and thawed.
     */
    async group({ pids, tenant }) {
      const startWall = wall();
      const producer = log.producer();
      const streams = new SnapshotStreams(producer, log.maxFrameBytes);
      const ids = [];
      let thawedWall = 0;
      try {
        const members = await streams.ship(async () => {
          const m = await captureGroup({
            targets: { pids }, groupId: newSnapshotId(), tenant, host: 'bench',
            snapshotFor: () => {
              const s = streams.open(newSnapshotId());
              ids.push(s.snapshotId);
              return { writer: s.writer, drain: s.drain };
            },
          });
          thawedWall = wall();
          return m;
        });
        return { ids, startWall, thawedWall, shippedWall: wall(), frameBytes: streams.bytes, bytesRead: members.reduce((n, m) => n + m.result.stats.bytesRead, 0), frozenMs: members[0].result.stats.freezeMs };
      } finally {
        await producer.close().catch(() => undefined);
      }
    },
  };
};
