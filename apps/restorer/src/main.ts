import { hostname } from 'node:os';
import { Registry, collectDefaultMetrics } from 'prom-client';
import { installThawOnSignals, thawAbandonedFreezes } from '@pagevault/capture';
import { Repository, keys } from '@pagevault/repo';
import { openObjectStore } from '@pagevault/runtime';
import { commonSpec, createLogger, loadConfig, readinessOf, serve } from '@pagevault/service-kit';
import { RestorerModule } from './restorer.module';

const spec = {
  ...commonSpec,
  PV_HTTP_PORT: { kind: 'int', default: '7703', help: 'HTTP port' },
  PV_OPEN_TENANTS: { kind: 'int', default: '64', help: 'tenants whose page index stays loaded (least recently used dropped first)' },
  PV_HOST_NAME: { kind: 'string', default: hostname(), help: "this host's name as its agent records it: the mapped files of its snapshots are checked to be the very files (device and inode)" },
} as const;

async function main(): Promise<void> {
  const c = loadConfig(spec);
  // A live restore freezes its target: SIGTERM or SIGINT mid-restore thaws it before the process dies.
  installThawOnSignals();
  // What a predecessor killed outright (SIGKILL, the OOM killer) left frozen is thawed first.
  const startLog = createLogger('restorer');
  for (const a of thawAbandonedFreezes()) {
    const { pid: target, ...rest } = a; // pino's own pid is the service's
    startLog.warn({ target, ...rest }, `pagevault process ${a.holder} died with process ${target} frozen: ${a.outcome}`);
  }
  const store = openObjectStore({ kind: 's3', endpoint: c.PV_S3_ENDPOINT, bucket: c.PV_S3_BUCKET, region: c.PV_S3_REGION, accessKeyId: c.PV_S3_ACCESS_KEY, secretAccessKey: c.PV_S3_SECRET_KEY });
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const ready = readinessOf({ 'object store': () => store.head(keys.tenants + 'ready-probe') });
  await serve(RestorerModule.forRoot(new Repository(store, {
    maxOpenTenants: c.PV_OPEN_TENANTS,
    onDamagedIndex: (tenant, damaged) => {
      for (const e of damaged) startLog.error({ tenant, key: e.details['key'] }, `tenant ${tenant}: ${e.message}; its pages look missing until \`pagevault repair-index\` rebuilds it`);
    },
  }), registry, ready, c.PV_HOST_NAME), { service: 'restorer', host: c.PV_HTTP_HOST, port: c.PV_HTTP_PORT, token: c.PV_AUTH_TOKEN });
}

main().catch((e: unknown) => {
  process.stderr.write(`pagevault restorer: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
