import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { CompactionService } from '@pagevault/compaction';
import { KafkaFrameLog } from '@pagevault/framelog-kafka';
import { Repository } from '@pagevault/repo';
import { openObjectStore } from '@pagevault/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deleteTopic, kafkaBrokers, requireKafka, testAdmin, uniqueTopic } from '../framelog/kafka-env';
import { CLI, cliOn } from './cli-env';

// Real full disks: small tmpfs mounts (the tests run as root, as capture needs ptrace rights anyway),
// and a target whose 24 MiB of random bytes cannot fit in them, stored or spooled.
const work = mkdtempSync(join(tmpdir(), 'pv-full-'));
const mounts: string[] = [];
let target: ChildProcess;

function mountTmpfs(name: string, size: string): string {
  const dir = join(work, name);
  mkdirSync(dir);
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  mounts.push(dir);
  return dir;
}

/** The target's state letter in /proc/PID/stat: T when stopped. */
const stateOf = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];

beforeAll(async () => {
  expect(process.getuid?.(), 'these tests mount tmpfs file systems: run them as root').toBe(0);
  target = spawn(process.execPath, ['-e', "globalThis.keep = require('node:crypto').randomBytes(24 << 20); console.log('ready'); setInterval(() => {}, 1e6);"], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => createInterface({ input: target.stdout! }).once('line', r));
});

afterAll(() => {
  target?.kill('SIGKILL');
  for (const m of mounts) execFileSync('umount', ['-l', m]);
  rmSync(work, { recursive: true, force: true });
});

describe('a full disk', () => {
  it('fails an embedded snapshot with exit 9, thaws the target, commits nothing; the store works once there is room', () => {
    const disk = mountTmpfs('store', '8m');
    const { pv, pvJson } = cliOn(join(disk, 'store'));
    expect(pv('ls').code).toBe(2); // no store there yet: a snapshot makes it
    mkdirSync(join(disk, 'store'));
    expect(pvJson<unknown[]>('ls')).toEqual([]);
    // Full to the last byte: not even the record of the failure fits; the snapshot still fails for its cause.
    expect(() => execFileSync('dd', ['if=/dev/zero', `of=${join(disk, 'filler')}`, 'bs=64k'], { stdio: 'pipe' })).toThrow(/No space left/);
    const full = pv('snapshot', String(target.pid));
    expect(full.code, full.err).toBe(9);
    expect(full.err).toMatch(/PV_STORE_FULL: .*no space left \(ENOSPC\)/);
    expect(full.err).toContain('its failed record could not be stored either');
    expect(stateOf(target.pid!)).not.toBe('T');
    rmSync(join(disk, 'filler'));
    // 8 MiB free: too little for the target's 24 MiB of random pages.
    const short = pv('snapshot', String(target.pid));
    expect(short.code, short.err).toBe(9);
    expect(short.err).toMatch(/PV_STORE_FULL: .*no space left \(ENOSPC\)/);
    expect(stateOf(target.pid!)).not.toBe('T');
    expect(pvJson<unknown[]>('ls')).toEqual([]);

    execFileSync('mount', ['-o', 'remount,size=256m', disk]);
    const [s] = pvJson<{ snapshotId: string }[]>('snapshot', String(target.pid));
    expect(pvJson<{ id: string }[]>('ls').map((x) => x.id)).toEqual([s!.snapshotId]);
    const [v] = pvJson<{ ok: boolean; pagesVerified: number }[]>('verify');
    expect(v!.ok).toBe(true);
    expect(v!.pagesVerified).toBeGreaterThan((24 << 20) / 4096);
  });

  it('fails a restore with exit 9 naming the file, leaving no output that looks complete', () => {
    const { pv, pvJson } = cliOn(join(work, 'roomy'));
    pvJson('snapshot', String(target.pid));
    const disk = mountTmpfs('out', '4m');
    for (const [format, out] of [['raw', join(disk, 'raw')], ['elf', join(disk, 'core')], ['stream', join(disk, 'stream')]] as const) {
      const r = pv('restore', 'latest', '--format', format, '--out', out);
      expect(r.code, `${format}: ${r.err}`).toBe(9);
      expect(r.err).toContain('PV_STORE_FULL');
      expect(r.err).toContain(disk);
      expect(readdirSync(disk), format).toEqual([]); // nothing under the name asked for, no temporary left
    }
  });

  it('ships a --kafka snapshot whole when its frame spool is full: frames go at Kafka\'s pace, one warning, no spool file stays', async () => {
    await requireKafka();
    const topic = uniqueTopic('full-spool');
    const spool = mountTmpfs('spool', '1m');
    const store = join(work, 'fleet');
    // The fleet's side: the topic, and a compactor consuming it into the store the CLI waits on.
    const log = new KafkaFrameLog({ brokers: kafkaBrokers, clientId: 'pv-it-full-spool', topic, partitions: 1 });
    await log.ensureTopic();
    const compactor = new CompactionService(log, new Repository(openObjectStore({ kind: 'dir', dir: store })), { groupId: `${topic}-compactor` });
    await compactor.start();
    const env = { PV_KAFKA_BROKERS: kafkaBrokers.join(','), PV_KAFKA_TOPIC: topic, PV_KAFKA_PARTITIONS: '1', PV_SPOOL_DIR: spool, PV_SPOOL_MEMORY_MIB: '1' };
    // No PV_LOG_LEVEL: the CLI mutes kafkajs's warnings by default, never the spool's.
    const { pvJson } = cliOn(store);
    try {
      // Not spawnSync: the compactor runs on this process's event loop.
      const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
        execFile(process.execPath, [CLI, '--store', store, '--json', '--kafka', 'snapshot', String(target.pid)], { env: { ...process.env, ...env }, timeout: 120_000 }, (e, out, err) =>
          resolve({ code: e ? (typeof e.code === 'number' ? e.code : -1) : 0, out, err }),
        );
      });
      expect(r.code, r.err).toBe(0);
      const warnings = r.err.split('\n').filter((l) => l.includes('"ns":"framelog.spool"'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('no space left (ENOSPC)');
      expect(stateOf(target.pid!)).not.toBe('T');
      expect(readdirSync(spool)).toEqual([]);
      // Committed by the compactor (which checks every frame's sequence and the stream's digest), and every page reads back.
      const [s] = JSON.parse(r.out) as { snapshotId: string }[];
      const [v] = pvJson<{ id: string; ok: boolean; pagesVerified: number }[]>('verify', s!.snapshotId);
      expect(v).toMatchObject({ id: s!.snapshotId, ok: true });
      expect(v!.pagesVerified).toBeGreaterThan((24 << 20) / 4096);
    } finally {
      await compactor.stop();
      await log.close();
      await deleteTopic(topic).catch(() => undefined);
      const a = testAdmin();
      await a.connect();
      await a.deleteGroups([`${topic}-compactor`]).catch(() => undefined);
      await a.disconnect();
    }
  });
});

describe('a read-only file system', () => {
  it('fails a snapshot into a store on it, and each restore into it, with exit 5 saying so, leaving the target thawed', () => {
    const ro = mountTmpfs('read-only', '1m');
    execFileSync('mount', ['-o', 'remount,ro', ro]);
    const { pv } = cliOn(join(ro, 'store'));
    const s = pv('snapshot', String(target.pid));
    expect(s.code, s.err).toBe(5);
    expect(s.err).toMatch(/PV_PERMISSION_DENIED: put of object .* read-only file system \(EROFS\)/);
    expect(stateOf(target.pid!)).not.toBe('T');

    const { pvJson } = cliOn(join(work, 'roomy'));
    if (pvJson<unknown[]>('ls').length === 0) pvJson('snapshot', String(target.pid));
    for (const [format, out] of [['raw', join(ro, 'raw')], ['elf', join(ro, 'core')], ['stream', join(ro, 'stream')]] as const) {
      const r = cliOn(join(work, 'roomy')).pv('restore', 'latest', '--format', format, '--out', out);
      expect(r.code, `${format}: ${r.err}`).toBe(5);
      expect(r.err).toMatch(new RegExp(`PV_PERMISSION_DENIED: output ${out}.*read-only file system \\(EROFS\\)`));
    }
  });
});
