'use strict';
// The peers pagevault is measured against in the same run: gcore (gdb) for capture and core writing,
// restic backing the core up into the same S3 server, and zstd -1 of the core.
const { statSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const { run } = require('./proc.cjs');

/** gcore of a running (or stopped) process; the process is stopped by ptrace for the whole dump. */
async function gcore(pid, dir, tmp) {
  const prefix = join(dir, 'core');
  const r = await run('gcore', ['-o', prefix, String(pid)], { tmp });
  const file = `${prefix}.${pid}`;
  return { file, bytes: statSync(file).size, ms: r.ms, maxRssKiB: r.maxRssKiB };
}

/** zstd -1 (single-threaded, its default) of a file; the compressed copy is removed. */
async function zstd1(file, tmp) {
  const out = `${file}.zst`;
  const r = await run('zstd', ['-1', '-q', '-f', '-o', out, file], { tmp });
  const bytes = statSync(out).size;
  rmSync(out, { force: true });
  return { bytes, ms: r.ms, maxRssKiB: r.maxRssKiB };
}

/** One restic repository under a prefix of the bench's bucket (s3:http://host:port/bucket/prefix). */
class Restic {
  constructor({ bin, endpoint, bucket, prefix, accessKey, secretKey, cacheDir, tmp }) {
    this.bin = bin;
    this.prefix = prefix;
    this.tmp = tmp;
    this.repo = `s3:${endpoint.replace(/\/$/, '')}/${bucket}/${prefix}`;
    this.env = {
      ...process.env, RESTIC_REPOSITORY: this.repo, RESTIC_PASSWORD: 'pagevault-bench',
      AWS_ACCESS_KEY_ID: accessKey, AWS_SECRET_ACCESS_KEY: secretKey, RESTIC_CACHE_DIR: cacheDir,
    };
  }

  async init() {
    await run(this.bin, ['init'], { env: this.env, tmp: this.tmp });
  }

  /** `restic backup` of files; its JSON summary (data_added...) with wall ms and peak RSS. */
  async backup(files) {
    const r = await run(this.bin, ['backup', '--json', '--host', 'bench', ...files], { env: this.env, tmp: this.tmp });
    const summary = r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((m) => m.message_type === 'summary');
    return { ms: r.ms, maxRssKiB: r.maxRssKiB, dataAdded: summary?.data_added ?? 0, summary };
  }

  /** `restic check --read-data`: every pack read and every blob checked. */
  async checkReadData() {
    const r = await run(this.bin, ['check', '--read-data'], { env: this.env, tmp: this.tmp });
    return { ms: r.ms, maxRssKiB: r.maxRssKiB };
  }

  /** `restic stats --mode raw-data`: the size of the blobs the repository holds. */
  async rawData() {
    const r = await run(this.bin, ['stats', '--mode', 'raw-data', '--json'], { env: this.env, tmp: this.tmp });
    return JSON.parse(r.stdout.trim().split('\n').pop());
  }
}

module.exports = { gcore, zstd1, Restic };
