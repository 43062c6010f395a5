// A compactor as its own node process, for the kill -9 tests: a CompactionService on the real Kafka topic
// and the real S3 bucket, whose store dies (SIGKILL to itself) right after a chosen put has succeeded.
// Run with `node --conditions=@pagevault/source -r ./ts-js-resolve-hook.js compactor-child.ts '<json>'`.
// It reports on stdout, one line each: READY, FRAMES <n>, COMMITTED <id> <newPages>, FAILED <id> <code>,
// CRASH <key>. Pipes are written synchronously on Linux, so CRASH is out before the kill.
import { CompactionService } from '@pagevault/compaction';
import { KafkaFrameLog } from '@pagevault/framelog-kafka';
import { Repository } from '@pagevault/repo';
import { openObjectStore } from '@pagevault/runtime';
import { s3Env } from '../objstore/s3-env';
import { HookedObjectStore } from './hooked-object-store';

export interface CompactorChildConfig {
  brokers: string[];
  topic: string;
  group: string;
  /** Die right after the first successful put of a key starting with this (e.g. `t/<tenant>/packs/`). */
  crashAfterPutOf?: string;
  packTargetBytes?: number;
}

const c = JSON.parse(process.argv[2]!) as CompactorChildConfig;
const say = (line: string) => process.stdout.write(`${line}\n`);

const store = new HookedObjectStore(openObjectStore({ kind: 's3', ...s3Env }), {
  afterPut: (key) => {
    if (c.crashAfterPutOf === undefined || !key.startsWith(c.crashAfterPutOf)) return;
    say(`CRASH ${key}`);
    process.kill(process.pid, 'SIGKILL');
  },
});
// A short session so that the next member of the group does not wait 30 s for this one once it is killed.
const log = new KafkaFrameLog({ brokers: c.brokers, clientId: 'pv-it-compactor-child', topic: c.topic, partitions: 1, sessionTimeoutMs: 6_000, heartbeatIntervalMs: 500 });
const service = new CompactionService(log, new Repository(store, c.packTargetBytes ? { packTargetBytes: c.packTargetBytes } : {}), {
  groupId: c.group,
  events: {
    frames: (n) => say(`FRAMES ${n}`),
    committed: (m) => say(`COMMITTED ${m.snapshotId} ${m.counts.newPages}`),
    failed: (id, code) => say(`FAILED ${id} ${code}`),
  },
});

process.once('SIGTERM', () => {
  void service.stop().then(() => log.close()).finally(() => process.exit(0));
});

service.start().then(
  () => say('READY'),
  (e: unknown) => {
    process.stderr.write(`compactor child: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
