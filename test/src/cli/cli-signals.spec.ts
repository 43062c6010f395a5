import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { identityScope } from '@pagevault/repo';
import { CLI, cliOn } from './cli-env';
import { deleteTopic, kafkaBrokers, requireKafka, uniqueTopic } from '../framelog/kafka-env';
import { requireS3Server, s3Env, s3Store } from '../objstore/s3-env';

// A running target with 256 MiB of random bytes: frozen long enough (~0.1 s) to be caught frozen.
const work = mkdtempSync(join(tmpdir(), 'pv-cli-signals-'));
let target: ChildProcess;

/** The process's state letter in /proc/PID/stat: T stopped by a signal, t stopped by a tracer. */
const stateOf = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0]!;
const sleepMs = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

beforeAll(async () => {
  target = spawn(process.execPath, ['-e', "globalThis.keep = require('node:crypto').randomBytes(256 << 20); console.log('ready'); setInterval(() => {}, 1e6);"], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => createInterface({ input: target.stdout! }).once('line', r));
});

afterAll(() => {
  target?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/**
 * Runs the CLI with `args` and returns once `pid` is seen frozen (watched synchronously: the CLI is another
 * process), with its stderr so far and a promise of the signal it dies of.
 */
function untilFrozen(pid: number, args: string[], env: NodeJS.ProcessEnv = process.env): { cli: ChildProcess; stderr: () => string; exited: Promise<NodeJS.Signals | null> } {
  const cli = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  cli.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<NodeJS.Signals | null>((r) => cli.once('close', (_, sig) => r(sig)));
  const deadline = Date.now() + 30_000;
  while (!/[Tt]/.test(stateOf(pid)) && cli.exitCode === null && Date.now() < deadline) sleepMs(1);
  expect(stateOf(pid), 'the target was never seen frozen').toMatch(/[Tt]/);
  return { cli, stderr: () => stderr, exited };
}

describe('pagevault snapshot interrupted while its target is frozen', () => {
  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('%s: the CLI thaws the target, drops its freeze lock, then dies of the signal', async (signal) => {
    const pid = target.pid!;
    expect(stateOf(pid)).not.toMatch(/[Tt]/);
    const locks = join(work, `locks-${signal}`);
    mkdirSync(locks);
    const { cli, stderr, exited } = untilFrozen(pid, ['--store', join(work, signal), 'snapshot', String(pid)], { ...process.env, PV_LOCK_DIR: locks });
    expect(readdirSync(locks)).toEqual([`pagevault-freeze-${pid}.lock`]); // held while frozen
    cli.kill(signal);
    expect(await exited).toBe(signal);
    expect(stderr()).toBe(`pagevault: stopped by ${signal}: any process it froze is thawed, and nothing unfinished is left looking complete\n`);
    expect(stateOf(pid)).not.toMatch(/[Tt]/);
    expect(readdirSync(locks)).toEqual([]); // released on the way out, after the thaw
  });

  it('names the snapshots it committed before the signal, which stay', async () => {
    // A small process first (committed), then the large target, interrupted while frozen.
    const small = spawn('sleep', ['60']);
    const store = join(work, 'named');
    try {
      const pid = target.pid!;
      const { cli, stderr, exited } = untilFrozen(pid, ['--store', store, 'snapshot', String(small.pid), String(pid)]);
      cli.kill('SIGINT');
      expect(await exited).toBe('SIGINT');
      const kept = cliOn(store).pvJson<{ id: string; pid: number }[]>('ls');
      expect(kept.map((s) => s.pid)).toEqual([small.pid]);
      expect(stderr()).toBe(`pagevault: stopped by SIGINT: any process it froze is thawed, and nothing unfinished is left looking complete; committed before it, and kept: ${kept[0]!.id}\n`);
    } finally {
      small.kill('SIGKILL');
    }
  });
});

describe('pagevault restore killed with SIGKILL', () => {
  it.each([
    ['elf', 'core', (n: string) => n.startsWith('core.partial-')],
    ['raw', 'raw', (n: string) => n.startsWith('.raw.partial-')],
  ] as const)('%s: the next restore to the same output removes what the killed one left, and completes', async (format, name, isPartial) => {
    const store = join(work, `restore-${format}`);
    const { pvJson, pv } = cliOn(store);
    const id = pvJson<{ snapshotId: string }[]>('snapshot', String(target.pid!))[0]!.snapshotId;
    const dir = join(work, `out-${format}`);
    mkdirSync(dir);
    const out = join(dir, name);
    const cli = spawn(process.execPath, [CLI, '--store', store, 'restore', id, '--format', format, '--out', out], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => cli.once('exit', (_, sig) => r(sig)));
    const deadline = Date.now() + 30_000;
    while (!readdirSync(dir).some(isPartial) && cli.exitCode === null && Date.now() < deadline) sleepMs(1);
    cli.kill('SIGKILL'); // no handler runs: the partial output stays
    expect(await exited).toBe('SIGKILL');
    const left = readdirSync(dir).filter(isPartial);
    expect(left, 'the restore was never seen writing').toHaveLength(1);
    expect(existsSync(out)).toBe(false); // never a complete-looking output

    const r = pv('restore', id, '--format', format, '--out', out);
    expect(r.code, r.err).toBe(0);
    expect(readdirSync(dir).sort()).toEqual([name]);
  });

  it('leaves alone the partial output of a restore still running', () => {
    const dir = join(work, 'out-live');
    mkdirSync(dir);
    const { pv, pvJson } = cliOn(join(work, 'restore-live'));
    const id = pvJson<{ snapshotId: string }[]>('snapshot', String(target.pid!))[0]!.snapshotId;
    // Named as this test process writes them (its scope, pid and start time): a writer that is alive.
    const scope = identityScope()!;
    const start = readFileSync('/proc/self/stat', 'utf8').replace(/^.*\) /s, '').split(' ')[19];
    const mine = `core.partial-${scope}-${process.pid}-${start}-0123abcd`;
    writeFileSync(join(dir, mine), 'still writing');
    expect(pv('restore', id, '--format', 'elf', '--out', join(dir, 'core')).code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['core', mine]);
  });
});

describe('pagevault --kafka --s3 snapshot interrupted while it waits for a compactor', () => {
  it('says the snapshot is in Kafka already and will still be committed, naming it', async () => {
    await requireKafka();
    await requireS3Server(s3Store());
    // A topic no compactor reads: the CLI ships the frames, then waits for a manifest that does not come.
    const topic = uniqueTopic('cli-sigint');
    const tenant = `cli-sigint-${Date.now()}`;
    const sleeper = spawn('sleep', ['120']);
    const env = {
      ...process.env, PV_KAFKA_BROKERS: kafkaBrokers.join(','), PV_KAFKA_TOPIC: topic, PV_KAFKA_PARTITIONS: '1',
      PV_S3_ENDPOINT: s3Env.endpoint, PV_S3_BUCKET: s3Env.bucket, PV_S3_REGION: s3Env.region,
      PV_S3_ACCESS_KEY: s3Env.accessKeyId, PV_S3_SECRET_KEY: s3Env.secretAccessKey, PV_SPOOL_DIR: 'off',
    };
    try {
      const cli = spawn(process.execPath, [CLI, '--kafka', '--s3', '--tenant', tenant, 'snapshot', String(sleeper.pid)], { stdio: ['ignore', 'ignore', 'pipe'], env });
      let stderr = '';
      cli.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<NodeJS.Signals | null>((r) => cli.once('close', (_, sig) => r(sig)));
      for (let i = 0; i < 600 && !stderr.includes('waiting up to') && cli.exitCode === null; i++) await new Promise((r) => setTimeout(r, 100));
      const id = /snapshot ([0-9a-f]{32}): waiting up to/.exec(stderr)?.[1];
      expect(id, stderr).toBeDefined();
      cli.kill('SIGINT');
      expect(await exited).toBe('SIGINT');
      expect(stderr).toContain(`stopped by SIGINT: any process it froze is thawed, and nothing unfinished is left looking complete; snapshot ${id} is all in Kafka already: a compactor will still commit it`);
    } finally {
      sleeper.kill('SIGKILL');
      await deleteTopic(topic).catch(() => undefined);
    }
  }, 120_000);
});
