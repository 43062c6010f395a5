import { availableParallelism } from 'node:os';
import { Registry } from 'prom-client';
import { configurePageHasher } from '@pagevault/hashing';
import { CompactionService, DeadLetters } from '@pagevault/compaction';
import { Repository, keys } from '@pagevault/repo';
import { kafkaCompression, openFrameLog, openObjectStore, retentionSetting } from '@pagevault/runtime';
import { commonSpec, createLogger, loadConfig, readinessOf, serve } from '@pagevault/service-kit';
import { compactorMetrics } from './compactor-metrics';
import { CompactorModule } from './compactor.module';

const spec = {
  ...commonSpec,
  PV_HTTP_PORT: { kind: 'int', default: '7702', help: 'HTTP port' },
  PV_COMPACTOR_GROUP: { kind: 'string', default: 'pagevault-compactor', help: 'Kafka consumer group' },
  PV_SNAPSHOT_TIMEOUT_MS: { kind: 'int', default: '300000', help: 'fail a snapshot whose frames stop for this long' },
  PV_MAX_OPEN_SNAPSHOTS: { kind: 'int', default: '10000', help: 'snapshots begun and not ended (~20 KiB each) past which a new one is failed at its begin' },
  PV_ZSTD_LEVEL: { kind: 'int', default: '1', help: 'zstd level for new packs' },
  PV_DELTA: { kind: 'int', default: '1', help: '1: store a changed page as a delta against the parent snapshot\'s page at its address; 0: whole' },
  PV_RECENT_PAGES_MIB: { kind: 'int', default: '1024', help: 'MiB of recently stored pages kept (all tenants), where deltas find their bases without a GET' },
  PV_RECENT_MAPS_MIB: { kind: 'int', default: '256', help: 'MiB of the page maps of recently ingested VMAs kept (all tenants), where incrementals find their parent\'s without a GET' },
  PV_HASH_THREADS: { kind: 'int', default: String(Math.max(0, availableParallelism() - 1)), help: 'helper threads hashing pages beside the main thread (default: cores - 1)' },
} as const;

async function main(): Promise<void> {
  const c = loadConfig(spec);
  configurePageHasher(c.PV_HASH_THREADS);
  const log = createLogger('compactor');
  const store = openObjectStore({ kind: 's3', endpoint: c.PV_S3_ENDPOINT, bucket: c.PV_S3_BUCKET, region: c.PV_S3_REGION, accessKeyId: c.PV_S3_ACCESS_KEY, secretAccessKey: c.PV_S3_SECRET_KEY });
  const frames = openFrameLog({ kind: 'kafka', brokers: c.PV_KAFKA_BROKERS, topic: c.PV_KAFKA_TOPIC, partitions: c.PV_KAFKA_PARTITIONS, clientId: 'pagevault-compactor', ...retentionSetting(c.PV_KAFKA_RETENTION_HOURS) });
  const dlqLog = openFrameLog({
    kind: 'kafka', brokers: c.PV_KAFKA_BROKERS, topic: c.PV_KAFKA_DLQ_TOPIC, partitions: 1, clientId: 'pagevault-compactor-dlq',
    compression: kafkaCompression(c.PV_KAFKA_COMPRESSION),
  });
  const deadLetters = new DeadLetters(() => dlqLog.producer(), log, { ensureTopic: () => dlqLog.ensureTopic(), sourceTopic: c.PV_KAFKA_TOPIC });
  const registry = new Registry();
  const repo = new Repository(store, {
    compressionLevel: c.PV_ZSTD_LEVEL, delta: c.PV_DELTA !== 0, recentPagesBytes: c.PV_RECENT_PAGES_MIB * 2 ** 20, recentMapsBytes: c.PV_RECENT_MAPS_MIB * 2 ** 20,
    // Left out, its pages are stored again rather than deduplicated: nothing is lost, but someone should run repair-index.
    onDamagedIndex: (tenant, damaged) => {
      for (const e of damaged) log.error({ tenant, key: e.details['key'] }, `tenant ${tenant}: ${e.message}; left out (its pages are stored again) until \`pagevault repair-index\` rebuilds it`);
    },
  });
  const metrics = compactorMetrics(registry, () => compaction.lag(), () => repo.packsWritten());
  const compaction: CompactionService = new CompactionService(frames, repo, {
    groupId: c.PV_COMPACTOR_GROUP,
    snapshotTimeoutMs: c.PV_SNAPSHOT_TIMEOUT_MS,
    maxOpenSnapshots: c.PV_MAX_OPEN_SNAPSHOTS,
    deadLetter: deadLetters.write,
    events: {
      ...metrics,
      committed: (m, ms) => {
        metrics.committed?.(m, ms);
        log.info({ snapshot: m.snapshotId, tenant: m.tenant, pages: m.counts.dataPages, newPages: m.counts.newPages, deltaPages: m.counts.deltaPages ?? 0, ms }, 'snapshot committed');
      },
      failed: (id, code, reason) => {
        metrics.failed?.(id, code, reason);
        log.warn({ snapshot: id, code, reason }, 'snapshot failed');
      },
    },
  });
  const ready = readinessOf({ 'object store': () => store.head(keys.tenants + 'ready-probe'), kafka: () => frames.endOffsets() });
  // The topics are made (if missing) and the group joined once HTTP answers: /readyz says what is missing meanwhile.
  const startup = { prepare: () => Promise.all([frames.ensureTopic(), dlqLog.ensureTopic()]), fatal };
  await serve(CompactorModule.forRoot(compaction, registry, ready, startup), { service: 'compactor', host: c.PV_HTTP_HOST, port: c.PV_HTTP_PORT, token: c.PV_AUTH_TOKEN });
}

function fatal(e: unknown): never {
  process.stderr.write(`pagevault compactor: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}

main().catch(fatal);
