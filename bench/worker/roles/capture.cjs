'use strict';
// The capture stage alone: the raw read ceiling (a pure process_vm_readv pass over the pages a capture
// reads) against captureSnapshot with a writer that drops every frame.
const { closeSync, openSync, readFileSync, readSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const { HI_FILE_SHARED, HI_PRESENT, RemoteReader, captureSnapshot, parseSmaps } = require('@pagevault/capture');
const { FramePool, SnapshotWriter, frameSealer, newSnapshotId } = require('@pagevault/format');

const NO_CONTENTS = new Set(['[vdso]', '[vvar]', '[vvar_vclock]', '[vsyscall]']);
const WINDOW = 65536; // pagemap entries per pread, as the capture reads them

/** Addresses of the present pages a capture copies: anonymous ones, and written (COW) pages of private files. */
function presentPages(pid, ps) {
  const vmas = parseSmaps(readFileSync(`/proc/${pid}/smaps`, 'utf8'));
  const fd = openSync(`/proc/${pid}/pagemap`, 'r');
  const buf = Buffer.allocUnsafe(WINDOW * 8);
  let addrs = new Float64Array(1 << 16);
  let n = 0;
  try {
    for (const v of vmas) {
      if (v.perms[0] !== 'r' || NO_CONTENTS.has(v.path) || /\b(io|pf|ht)\b/.test(v.vmFlags)) continue;
      const privateFile = v.path.startsWith('/') && v.perms[3] === 'p';
      for (let a = v.start; a < v.end; a += WINDOW * ps) {
        const count = Math.min(WINDOW, (v.end - a) / ps);
        const got = readSync(fd, buf, 0, count * 8, (a / ps) * 8) / 8;
        for (let i = 0; i < got; i++) {
          const hi = buf.readUInt32LE(i * 8 + 4);
          if (!(hi & HI_PRESENT) || (privateFile && hi & HI_FILE_SHARED)) continue;
          if (n === addrs.length) {
            const grown = new Float64Array(addrs.length * 2);
            grown.set(addrs);
            addrs = grown;
          }
          addrs[n++] = a + i * ps;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return addrs.subarray(0, n);
}

module.exports = async () => ({
  /** process_vm_readv of every page presentPages() finds, batchPages a call (the capture's batch). */
  ceiling({ pid, pageSize = 4096, batchPages = 1024 }) {
    const t0 = performance.now();
    const addrs = presentPages(pid, pageSize);
    const planMs = performance.now() - t0;
    const r = new RemoteReader(pid, pageSize, batchPages);
    const status = new Uint8Array(batchPages);
    const t1 = performance.now();
    for (let i = 0; i < addrs.length; i += batchPages) {
      const batch = addrs.subarray(i, Math.min(addrs.length, i + batchPages));
      status.fill(0, 0, batch.length);
      r.readPending(batch, status, 0, batch.length);
    }
    const ms = performance.now() - t1;
    r.close();
    return { pages: addrs.length, bytes: r.bytesRead, calls: r.calls, ms, planMs };
  },

  /**
   * captureSnapshot, frozen, every frame dropped as it is emitted: the capture stage's own cost. The
   * frames' buffers go back to the writer's pool, as the agent's spool gives them back once written.
   */
  async capture({ pid, batchPages, wantHashes = false }) {
    let frameBytes = 0;
    const pool = new FramePool();
    const emit = (f) => {
      frameBytes += f.length;
      pool.give(f);
    };
    const writer = new SnapshotWriter({ snapshotId: newSnapshotId(), emit, pool, sealer: frameSealer() });
    const t0 = performance.now();
    const r = await captureSnapshot({
      pid, writer, tenant: 'bench', host: 'bench', drain: async () => undefined, wantHashes,
      ...(batchPages ? { batchPages } : {}),
    });
    const ms = performance.now() - t0;
    const { skippedByReason: _s, ...stats } = r.stats;
    return { ms, frameBytes, ...stats };
  },
});
