'use strict';
// The restorer's work on one stored snapshot: reassemble its frames from the store and write raw sparse
// images or an ELF core (fsync and atomic rename included, as the CLI does by default).
const { rm } = require('node:fs/promises');
const { performance } = require('node:perf_hooks');
const { Repository } = require('@pagevault/repo');
const { restoreFrames, writeElfCore, writeRawImages } = require('@pagevault/restore');
const { openObjectStore } = require('@pagevault/runtime');

module.exports = async ({ store, tenant }) => {
  const t = await new Repository(openObjectStore(store)).tenant(tenant);
  const run = async (id, write, out, opts) => {
    const m = await t.getManifest(id);
    const t0 = performance.now();
    const r = await write(restoreFrames(t, m), out, opts);
    const ms = performance.now() - t0;
    await rm(out, { recursive: true, force: true });
    return { ms, bytesWritten: r.bytesWritten, pages: r.pages, logicalBytes: (m.counts.dataPages + m.counts.zeroPages) * m.pageSize };
  };
  return {
    raw: ({ id, out, fsync = true }) => run(id, writeRawImages, out, { fsync }),
    elf: ({ id, out, fsync = true }) => run(id, writeElfCore, out, { fsync }),
  };
};
