// Measures (prints, asserts nothing): the raw process_vm_readv ceiling against captureSnapshot throughput
// on a target holding N MiB of random bytes, the hash path of incrementals, /proc/PID/mem, and reading
// pages the target shares copy-on-write with a forked child.
//   node --conditions=@pagevault/source -r ./bench/ts-hook.js bench/capture-bench.ts [MiB=1024]
// PV_CAPTURE_PROFILE=1 (with node --cpu-prof) runs three captures only, for a profile of the capture alone.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { hash, randomBytes } from 'node:crypto';
import { Consistency, FramePool, SnapshotWriter, frameSealer, newSnapshotId } from '@pagevault/format';
import { RemoteReader, captureSnapshot, type CaptureOptions, type CaptureResult } from '../src/index';
import { ZeroScanner } from '../src/memory/zero-page';

const MIB = Number(process.argv[2] ?? 1024);

interface Big {
  pid: number;
  child: number;
  addr: string;
  bytes: number;
  pageSize: number;
}

async function start(cow: boolean): Promise<{ info: Big; stop: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), 'pv-bench-'));
  const bin = join(dir, 'target');
  execFileSync('gcc', ['-O2', '-pthread', '-o', bin, resolve(__dirname, '../../../test/fixtures/target.c')]);
  const p = spawn(bin, ['big', String(MIB), ...(cow ? ['cow'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await new Promise<string>((res) => createInterface({ input: p.stdout }).once('line', res));
  return { info: JSON.parse(line) as Big, stop: () => p.stdin.end() };
}

const gbps = (bytes: number, ms: number): string => `${(bytes / 2 ** 30 / (ms / 1000)).toFixed(2)} GiB/s`;

function rawCeiling(info: Big, batchPages: number, useProcMem = false): string {
  const ps = info.pageSize;
  const base = parseInt(info.addr, 16);
  const pages = info.bytes / ps;
  const r = new RemoteReader(info.pid, ps, batchPages, { useProcMem });
  const addrs = new Float64Array(batchPages);
  const status = new Uint8Array(batchPages);
  const t0 = performance.now();
  for (let p = 0; p < pages; p += batchPages) {
    const n = Math.min(batchPages, pages - p);
    for (let k = 0; k < n; k++) addrs[k] = base + (p + k) * ps;
    status.fill(0, 0, n);
    r.readPending(addrs, status, 0, n);
  }
  const ms = performance.now() - t0;
  r.close();
  return `${gbps(info.bytes, ms)} (${r.calls} calls, ${ms.toFixed(0)} ms)`;
}

async function capture(
  info: Big,
  extra: Partial<CaptureOptions> = {},
  recycle = true,
  sealer = true,
): Promise<CaptureResult & { ms: number; frameBytes: number }> {
  let frameBytes = 0;
  const pool = recycle ? new FramePool() : undefined;
  const writer = new SnapshotWriter({
    snapshotId: newSnapshotId(),
    pool,
    ...(sealer ? { sealer: frameSealer() } : {}),
    emit: (f) => {
      frameBytes += f.length;
      pool?.give(f);
    },
  });
  const t0 = performance.now();
  const r = await captureSnapshot({
    pid: info.pid,
    writer,
    tenant: 'bench',
    host: 'bench',
    drain: async () => undefined,
    ...extra,
  });
  return { ...r, ms: performance.now() - t0, frameBytes };
}

function line(label: string, r: CaptureResult & { ms: number }, bytes: number): void {
  const s = r.stats;
  console.log(
    `${label.padEnd(44)} ${gbps(bytes, r.ms).padStart(12)}  total ${r.ms.toFixed(0)} ms, read ${s.readMs.toFixed(0)} ms in ${s.readCalls} calls, ` +
      `frozen ${s.freezeMs.toFixed(0)} ms, data ${s.dataPages} parent ${s.parentPages} zero ${s.zeroPages}`,
  );
}

function rollup(pid: number): string {
  const t = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const f = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(t)?.[1] ?? 0) >> 10;
  return ['Rss', 'Shared_Dirty', 'Private_Clean', 'Private_Dirty'].map((k) => `${k} ${f(k)} MiB`).join(', ');
}

function memAvailableMiB(): number {
  return Number(/MemAvailable:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))![1]) >> 10;
}

/** Per-page costs of the zero test and of SHA-256, on random and zero pages. */
function microbench(): void {
  const ps = 4096;
  const n = 1024;
  const rand = randomBytes(n * ps);
  const zero = Buffer.alloc(n * ps);
  const time = (f: () => void, reps = 16): number => {
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) f();
    return ((performance.now() - t0) * 1e6) / (reps * n);
  };
  for (const [name, buf] of [
    ['random', rand],
    ['zero', zero],
  ] as const) {
    const z = new ZeroScanner(buf, ps);
    const zt = time(() => {
      for (let k = 0; k < n; k++) z.isZero(k);
    });
    const ht = time(() => {
      for (let k = 0; k < n; k++) hash('sha256', buf.subarray(k * ps, (k + 1) * ps), 'buffer');
    }, 4);
    console.log(
      `${name} pages: zero test ${zt.toFixed(0)} ns/page, SHA-256 ${(ht / 1000).toFixed(1)} µs/page`,
    );
  }
}

async function main(): Promise<void> {
  if (process.env.PV_CAPTURE_PROFILE) {
    const { info, stop } = await start(false);
    for (let i = 0; i < 3; i++) line('profiled capture', await capture(info, { batchPages: 1024 }), info.bytes);
    stop();
    return;
  }
  console.log(`target: ${MIB} MiB of random bytes; node ${process.version}`);
  microbench();
  const { info, stop } = await start(false);
  try {
    for (const bp of [64, 256, 1024, 4096])
      console.log(
        `raw process_vm_readv, ${String(bp).padStart(4)} pages/call`.padEnd(44),
        rawCeiling(info, bp),
      );
    console.log('raw /proc/PID/mem pread, 1024 pages/read'.padEnd(44), rawCeiling(info, 1024, true));
    const rss0 = process.memoryUsage().rss;
    for (const bp of [256, 512, 1024])
      line(`captureSnapshot frozen, batchPages ${bp}`, await capture(info, { batchPages: bp }), info.bytes);
    line('same, 1024, fresh frames (no pool)', await capture(info, { batchPages: 1024 }, false), info.bytes);
    line('same, 1024, CRCs on the capture thread', await capture(info, { batchPages: 1024 }, true, false), info.bytes);
    line(
      'captureSnapshot live, batchPages 1024',
      await capture(info, { consistency: Consistency.Live }),
      info.bytes,
    );
    line(
      'captureSnapshot /proc/PID/mem, batchPages 1024',
      await capture(info, { useProcMem: true }),
      info.bytes,
    );
    const full = await capture(info, { wantHashes: true });
    line('full + page hashes (wantHashes)', full, info.bytes);
    const inc = await capture(info, {
      parent: { id: newSnapshotId(), hashes: full.hashes! },
      wantHashes: true,
    });
    line('incremental, hash path, nothing changed', inc, info.bytes);
    console.log(
      `hash table: ${full.hashes!.size} pages, ${(full.hashes!.byteLength / 2 ** 20).toFixed(1)} MiB`,
    );
    console.log(
      `agent RSS growth over all captures: ${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(1)} MiB`,
    );
  } finally {
    stop();
  }
  const cow = await start(true);
  try {
    console.log(`copy-on-write shared with a forked child (pid ${cow.info.child}):`);
    console.log(`  before: target ${rollup(cow.info.pid)}; child ${rollup(cow.info.child)}`);
    console.log('  raw /proc/PID/mem, 1024 pages/read'.padEnd(44), rawCeiling(cow.info, 1024, true));
    console.log(`  after /proc/PID/mem: target ${rollup(cow.info.pid)}`);
    line('  captureSnapshot frozen, batchPages 1024', await capture(cow.info), cow.info.bytes);
    console.log(`  after captureSnapshot: target ${rollup(cow.info.pid)}`);
    const avail0 = memAvailableMiB();
    console.log('  raw process_vm_readv, 1024 pages/call'.padEnd(44), rawCeiling(cow.info, 1024));
    console.log(
      `  after process_vm_readv: target ${rollup(cow.info.pid)}; MemAvailable -${avail0 - memAvailableMiB()} MiB`,
    );
    console.log('  raw process_vm_readv again (now unshared)'.padEnd(44), rawCeiling(cow.info, 1024));
  } finally {
    cow.stop();
  }
}

void main();
