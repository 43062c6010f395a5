import { hostname } from 'node:os';
import { Registry } from 'prom-client';
import { installThawOnSignals, thawAbandonedFreezes } from '@pagevault/capture';
import { kafkaCompression, openFrameLog, retentionSetting, spoolSetting } from '@pagevault/runtime';
import { commonSpec, createLogger, loadConfig, serve } from '@pagevault/service-kit';
import { agentMetrics } from './agent-metrics';
import { AgentModule } from './agent.module';

const spec = {
  ...commonSpec,
  PV_S3_ACCESS_KEY: { ...commonSpec.PV_S3_ACCESS_KEY, required: false },
  PV_S3_SECRET_KEY: { ...commonSpec.PV_S3_SECRET_KEY, required: false },
  PV_HTTP_PORT: { kind: 'int', default: '7701', help: 'HTTP port' },
  PV_TENANT: { kind: 'string', default: 'default', help: 'tenant of the snapshots this agent takes' },
  PV_HOST_NAME: { kind: 'string', default: hostname(), help: 'host name recorded in snapshots' },
  PV_PRECOPY_BUDGET_PAGES: { kind: 'int', default: '2048', help: 'pre-copy downtime budget in pages' },
  PV_CHANGE_HASH: { kind: 'string', default: 'auto', help: 'hash of the page tables kept to find changed pages without soft-dirty: auto (xxh3-128 where the native hashing library is built, else sha256), xxh3-128 (keyed per agent process) or sha256' },
  PV_SPOOL_DIR: { kind: 'string', default: '/var/tmp', help: 'local disk for frames Kafka has not taken yet (a target thaws once its frames are spooled); "off" ships straight to Kafka' },
  PV_SPOOL_MEMORY_MIB: { kind: 'int', default: '64', help: 'spooled frames kept in memory before the spool file' },
} as const;

async function main(): Promise<void> {
  const c = loadConfig(spec);
  const changeHash = c.PV_CHANGE_HASH === 'auto' ? undefined : c.PV_CHANGE_HASH;
  if (changeHash !== undefined && changeHash !== 'xxh3-128' && changeHash !== 'sha256') throw new Error(`PV_CHANGE_HASH must be auto, xxh3-128 or sha256, not ${changeHash}`);
  // Frozen targets are thawed when the agent is told to stop, whatever it was doing.
  installThawOnSignals();
  // What a predecessor killed outright (SIGKILL, the OOM killer) left frozen is thawed first.
  const startLog = createLogger('agent');
  for (const a of thawAbandonedFreezes()) {
    const { pid: target, ...rest } = a; // pino's own pid is the service's
    startLog.warn({ target, ...rest }, `pagevault process ${a.holder} died with process ${target} frozen: ${a.outcome}`);
  }
  const log = openFrameLog({
    kind: 'kafka', brokers: c.PV_KAFKA_BROKERS, topic: c.PV_KAFKA_TOPIC, partitions: c.PV_KAFKA_PARTITIONS, clientId: `pagevault-agent-${c.PV_HOST_NAME}`,
    compression: kafkaCompression(c.PV_KAFKA_COMPRESSION), ...retentionSetting(c.PV_KAFKA_RETENTION_HOURS),
    ...spoolSetting(c.PV_SPOOL_DIR, c.PV_SPOOL_MEMORY_MIB),
  });
  await log.ensureTopic();
  const registry = new Registry();
  await serve(AgentModule.forRoot(log, { tenant: c.PV_TENANT, host: c.PV_HOST_NAME, preCopyBudgetPages: c.PV_PRECOPY_BUDGET_PAGES, ...(changeHash ? { changeHash } : {}) }, registry, agentMetrics(registry)), {
    service: 'agent', host: c.PV_HTTP_HOST, port: c.PV_HTTP_PORT, token: c.PV_AUTH_TOKEN,
  });
}

main().catch((e: unknown) => {
  process.stderr.write(`pagevault agent: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
