'use strict';
// The restorer's work on one stored snapshot: reassemble it from the store and write raw sparse images or
// an ELF core (fsync and atomic rename included, as the CLI does by default). And the disk's own write
// ceiling for the same bytes, as a peer.
const { constants } = require('node:fs');
const { open, rm } = require('node:fs/promises');
const { performance } = require('node:perf_hooks');
const { Repository, checkStore } = require('@pagevault/repo');
const { alignedBuffer } = require('@pagevault/format');
const { restoreSnapshot, writeElfCore, writeRawImages } = require('@pagevault/restore');
const { openObjectStore } = require('@pagevault/runtime');

module.exports = async ({ store, tenant }) => {
  const t = await new Repository(openObjectStore(store)).tenant(tenant);
  const run = async (id, write, out, opts) => {
    const m = await t.getManifest(id);
    const t0 = performance.now();
    const r = await write(restoreSnapshot(t, m), out, opts);
    const ms = performance.now() - t0;
    await rm(out, { recursive: true, force: true });
    return { ms, bytesWritten: r.bytesWritten, pages: r.pages, logicalBytes: (m.counts.dataPages + m.counts.zeroPages) * m.pageSize };
  };
  return {
    raw: ({ id, out, fsync = true }) => run(id, writeRawImages, out, { fsync }),
    elf: ({ id, out, fsync = true }) => run(id, writeElfCore, out, { fsync }),
    /**
     * What `pagevault verify` of the whole tenant does (restic check --read-data's work): the index and
     * manifests loaded afresh, every pack read once and every page the snapshots reach checked.
     */
    async verify() {
      const t0 = performance.now();
      const fresh = await new Repository(openObjectStore(store)).tenant(tenant);
      const { manifests } = await fresh.readManifests();
      const c = await checkStore(fresh, manifests);
      const ms = performance.now() - t0;
      if (c.incomplete || c.damaged.length > 0) throw new Error(`verify of ${tenant} found damage: ${c.damaged.map((e) => e.message).join('; ') || 'pages missing'}`);
      return { ms, snapshots: manifests.length, pages: c.pages, bytes: c.bytes, deltasFetched: c.deltasFetched };
    },
    /**
     * `bytes` written to one file in 8 MiB writes from one reused buffer, then fsync (if asked): the disk's
     * ceiling, through the page cache or (`direct`) with O_DIRECT as a durable restore writes its pages.
     */
    async disk({ out, bytes, fsync = true, direct = false }) {
      const buf = alignedBuffer(8 << 20).fill(0x5a);
      const t0 = performance.now();
      const fh = await open(out, direct ? constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DIRECT : 'w');
      try {
        for (let o = 0; o < bytes; o += buf.length) await fh.write(buf, 0, Math.min(buf.length, bytes - o), o);
        if (fsync) await fh.sync();
      } finally {
        await fh.close();
      }
      const ms = performance.now() - t0;
      await rm(out, { force: true });
      return { ms, bytes };
    },
  };
};
