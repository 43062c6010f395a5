import { existsSync } from 'node:fs';
import { homedir, hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import { configurePageHasher } from '@pagevault/hashing';
import type { PageHashTable } from '@pagevault/capture';
import { Repository, type TenantStore } from '@pagevault/repo';
import { kafkaCompression, logLevel, openObjectStore, retentionSetting, spoolSetting, type LogConfig, type StoreConfig } from '@pagevault/runtime';

export interface GlobalOptions {
  store?: string;
  s3?: boolean;
  kafka?: boolean;
  tenant: string;
  host?: string;
  json?: boolean;
  /**
   * Keep the page tables of the snapshots taken in this process (the last KEPT_TABLES), so an
   * incremental of one of them compares XXH3 hashes from memory instead of rebuilding SHA-256 ones
   * from the stored page map: what a long-lived embedding program (and the demo) wants; a one-shot
   * command would hash for nothing.
   */
  keepPageHashes?: boolean;
}

/** Page tables a context keeps when asked to (24 bytes a data page: 1 GiB of pages → 6 MiB each). */
export const KEPT_TABLES = 4;

export interface Context {
  repo: Repository;
  storeConfig: StoreConfig;
  logConfig: LogConfig;
  tenant: () => Promise<TenantStore>;
  tenantName: string;
  host: string;
  json: boolean;
  /** Checked pages a whole-store verify keeps as delta bases (PV_VERIFY_MEMORY_MIB, default 256). */
  verifyKeepBytes: number;
  /** Page tables of snapshots taken in this process, by snapshot id (keepPageHashes). */
  keptHashes?: Map<string, PageHashTable>;
  /**
   * For commands that list what a store holds (ls, verify): a directory store named by --store or
   * $PV_HOME that does not exist is a mistyped path (PV_INVALID_ARGUMENT), not an empty store. The
   * default ~/.pagevault before its first snapshot is empty.
   */
  requireStore: () => void;
}

function env(name: string, fallback?: string): string {
  const v = process.env[name] ?? fallback;
  if (v === undefined || v === '') throw new PvError(ErrorCodes.CONFIG_INVALID, `${name} must be set for --s3/--kafka (see scripts/stack-env.sh)`);
  return v;
}

/**
 * What a command says of a damaged manifest it leaves out of "latest": a warning, and the latest readable
 * snapshot is meant (fetching the damaged one by id still fails, exit 4; `forget <id>` removes it).
 */
export function leftOut(e: PvError): void {
  process.stderr.write(`pagevault: warning: left out a damaged manifest: ${e.message}\n`);
}

/** A size in MiB from the environment, in bytes; unset or empty: the default. */
function mib(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback * 1_048_576;
  if (!/^\d+$/.test(v)) throw new PvError(ErrorCodes.CONFIG_INVALID, `${name} must be a number of MiB, not ${JSON.stringify(v)}`);
  return Number(v) * 1_048_576;
}

/**
 * The CLI's one place that reads the environment. Embedded default: a directory store ($PV_HOME or
 * ~/.pagevault) and an in-process frame log. --s3 and --kafka switch to the fleet's bucket and topic.
 */
export function openContext(o: GlobalOptions): Context {
  if (o.store !== undefined && o.store.trim() === '') throw new PvError(ErrorCodes.INVALID_ARGUMENT, '--store must name a directory');
  // An empty PV_HOME is unset (not the current directory).
  const storeDir = o.store ?? (process.env['PV_HOME'] || join(homedir(), '.pagevault'));
  const storeConfig: StoreConfig = o.s3
    ? {
        kind: 's3', endpoint: env('PV_S3_ENDPOINT', 'http://127.0.0.1:8333'), bucket: env('PV_S3_BUCKET', 'pagevault'),
        region: env('PV_S3_REGION', 'us-east-1'), accessKeyId: env('PV_S3_ACCESS_KEY'), secretAccessKey: env('PV_S3_SECRET_KEY'),
      }
    : { kind: 'dir', dir: storeDir };
  const logConfig: LogConfig = o.kafka
    ? {
        kind: 'kafka', brokers: env('PV_KAFKA_BROKERS', '127.0.0.1:9092').split(','), topic: env('PV_KAFKA_TOPIC', 'pagevault.frames'),
        partitions: Number(env('PV_KAFKA_PARTITIONS', '4')), clientId: 'pagevault-cli',
        compression: kafkaCompression(process.env['PV_KAFKA_COMPRESSION']),
        // A command's failure is its own error message and exit code; kafkajs's retries are not news to
        // the user of a command (PV_LOG_LEVEL=warn shows them).
        logLevel: logLevel(process.env['PV_LOG_LEVEL'], 'error'),
        ...retentionSetting(process.env['PV_KAFKA_RETENTION_HOURS']),
        // The target thaws once its frames are spooled on local disk, not once Kafka has taken them.
        ...spoolSetting(process.env['PV_SPOOL_DIR'] || undefined, process.env['PV_SPOOL_MEMORY_MIB'] ?? 64),
      }
    : {
        // The embedded log keeps this much of a snapshot's frames in memory until compacted, the rest in an
        // unlinked spill file next to the repository (not in /tmp, which may be RAM).
        kind: 'memory', memoryBytes: mib('PV_LOG_MEMORY_MIB', 128),
        spillDir: o.s3 ? tmpdir() : storeDir,
      };
  // Page hashing uses every core by default (PageHasher); PV_HASH_THREADS sets its helper threads.
  const threads = process.env['PV_HASH_THREADS'];
  if (threads !== undefined && threads !== '') {
    if (!/^\d+$/.test(threads)) throw new PvError(ErrorCodes.CONFIG_INVALID, `PV_HASH_THREADS must be a number of threads (0 or more), not ${JSON.stringify(threads)}`);
    configurePageHasher(Number(threads));
  }
  // One run takes a snapshot or two: large caches of recent pages (delta bases) and page maps would cost
  // memory and copies for little; the compactor service keeps 1 GiB and 256 MiB.
  const repo = new Repository(openObjectStore(storeConfig), {
    recentPagesBytes: mib('PV_RECENT_PAGES_MIB', 64),
    recentMapsBytes: mib('PV_RECENT_MAPS_MIB', 64),
    delta: process.env['PV_DELTA'] !== '0',
  });
  let warned = false;
  const named = o.store !== undefined || !!process.env['PV_HOME'];
  return {
    requireStore: () => {
      if (!o.s3 && named && !existsSync(storeDir)) throw new PvError(ErrorCodes.INVALID_ARGUMENT, `no store at ${storeDir}: the directory does not exist (a snapshot creates it)`, { details: { store: storeDir } });
    },
    repo, storeConfig, logConfig, tenantName: o.tenant, host: o.host ?? hostname(), json: o.json === true,
    verifyKeepBytes: mib('PV_VERIFY_MEMORY_MIB', 256),
    tenant: async () => {
      const t = await repo.tenant(o.tenant);
      // Said once: what reads the store works around a damaged index file, but pages it lists look missing.
      if (!warned && t.damagedIndexes.length) {
        warned = true;
        for (const e of t.damagedIndexes) process.stderr.write(`pagevault: warning: ${e.message}; its pages look missing until \`pagevault repair-index\` rebuilds it\n`);
      }
      return t;
    },
    ...(o.keepPageHashes ? { keptHashes: new Map<string, PageHashTable>() } : {}),
  };
}
