#!/usr/bin/env node
// Builds native/build/libpvpagehash.so (npm's postinstall runs this): SHA-256 and XXH3-128 of pages in
// batches, and CRC32C on three streams at once. Without a C compiler PageHasher falls back to
// node:crypto, a page a call: correct, ~1.8x slower, and SHA-256 only; CRC32C to @node-rs/crc32 (~4x
// slower). PV_NATIVE_REQUIRED=1 (CI) makes a failed build an error instead of that fallback.
const { spawnSync } = require('node:child_process');
const { mkdirSync } = require('node:fs');
const { join } = require('node:path');

const dir = join(__dirname, '..', 'native');
const out = join(dir, 'build', 'libpvpagehash.so');
mkdirSync(join(dir, 'build'), { recursive: true });
const cc = process.env.CC || 'cc';
const r = spawnSync(cc, ['-O2', '-shared', '-fPIC', '-o', out, join(dir, 'sha256-pages.c'), join(dir, 'xxh3-pages.c'), join(dir, 'crc32c.c')], { stdio: 'inherit' });
if (r.status === 0) {
  console.log(`pagevault: built ${out}`);
} else {
  const why = r.error ? r.error.message : `${cc} exited ${r.status}`;
  console.warn(`pagevault: native page hashing not built (${why}); hashing falls back to node:crypto`);
  if (process.env.PV_NATIVE_REQUIRED === '1') process.exit(1);
}
