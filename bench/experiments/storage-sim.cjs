'use strict';
// Offline models of pagevault's storage for bench/experiments/storage-series.cjs: a captured state is
// decoded once into its new unique pages (arrival order, as SnapshotIngest meets them) and its VMAs' page
// lists; packs and page maps are then rebuilt under other blob sizes, zstd levels, page orders and leaf
// sizes. Byte accounting follows docs/storage.md: pack = blobs + 44 B a page + 16; index file per flush
// = 48 + 48 B a page; map nodes stored once by sha. The models are checked against the real code at
// today's settings (16 pages) by the driver; page maps are built by the real buildPageMap at each leaf size.
const { createHash } = require('node:crypto');
const { readFileSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const { Compressor, Decompressor } = require('zstd-napi');
const { FrameSplitter, FrameType } = require('@pagevault/format');
const { PageKind, PageList, buildPageMap, mapNodeBytes } = require('@pagevault/repo');

const PS = 4096;
const PACK_TARGET = 12 << 20;
const TRAILER_PER_PAGE = 44;
const PACK_FIXED = 16;
const INDEX_PER_PAGE = 48;
const INDEX_FIXED = 12 + 32 + 4; // one pack per flush

function frames(file) {
  const s = new FrameSplitter();
  const out = s.push(readFileSync(file));
  s.end();
  return out;
}

/**
 * Decodes one captured state (a full snapshot's frames). `seen` (hash → true, across the series) decides
 * which pages are new. Returns the new pages (views into the state's bytes, with VMA and address), the
 * index of the last new page of each page chunk (where the compactor checks for a full pack), every data
 * page by address (for the delta model), one PageList per VMA, and page counts.
 */
function decodeState(file, seen) {
  const fresh = { data: [], addr: [], vma: [] };
  const chunkEnds = [];
  const byAddr = new Map();
  const lists = [];
  let vma = -1;
  let dataPages = 0;
  let zeroPages = 0;
  const distinct = new Set();
  for (const f of frames(file)) {
    const b = f.body;
    if (b.type === FrameType.VmaBegin) {
      vma = b.vma.index;
      lists.push(new PageList(PS));
    } else if (b.type === FrameType.ZeroRuns || b.type === FrameType.FileRuns) {
      for (const r of b.runs) lists.at(-1).add(r.start, r.pages, b.type === FrameType.ZeroRuns ? PageKind.Zero : PageKind.File);
      if (b.type === FrameType.ZeroRuns) for (const r of b.runs) zeroPages += r.pages;
    } else if (b.type === FrameType.PageChunk) {
      const n = b.addresses.length;
      const hashes = Buffer.allocUnsafe(n * 32);
      for (let i = 0; i < n; i++) {
        const page = b.data.subarray(i * PS, (i + 1) * PS);
        createHash('sha256').update(page).digest().copy(hashes, i * 32);
        byAddr.set(b.addresses[i], page);
        const key = hashes.toString('latin1', i * 32, i * 32 + 32);
        distinct.add(key);
        if (seen.has(key)) continue;
        seen.add(key);
        fresh.data.push(page);
        fresh.addr.push(b.addresses[i]);
        fresh.vma.push(vma);
      }
      let s = 0;
      for (let i = 1; i <= n; i++) {
        if (i === n || b.addresses[i] !== b.addresses[i - 1] + PS) {
          lists.at(-1).add(b.addresses[s], i - s, PageKind.Data, hashes, s * 32);
          s = i;
        }
      }
      dataPages += n;
      chunkEnds.push(fresh.data.length);
    } else if (b.type === FrameType.ParentRuns) {
      throw new Error(`${file}: parent runs in a captured state (expected full snapshots)`);
    }
  }
  return { fresh, chunkEnds, byAddr, lists, dataPages, zeroPages, distinctPages: distinct.size };
}

/** A cheap content class of a page: its most frequent byte (sampled) and how dominant it is. */
function similarityKey(page) {
  const h = new Uint16Array(256);
  for (let i = 0; i < PS; i += 16) h[page[i]]++;
  let top = 0;
  for (let v = 1; v < 256; v++) if (h[v] > h[top]) top = v;
  return top * 16 + Math.min(15, h[top] >> 4);
}

/** The order new pages of one state go into blobs: arrival (address order), or grouped by content class. */
function orderOf(fresh, order) {
  const idx = Array.from(fresh.data, (_, i) => i);
  if (order !== 'similar') return idx;
  const keys = fresh.data.map(similarityKey);
  return idx.sort((a, b) => keys[a] - keys[b] || a - b);
}

/**
 * Packs the series' new pages under one setting. `blobPages` Infinity = one blob per state (a bound);
 * `order`: 'arrival' | 'vma' (no blob spans two VMAs) | 'similar' | 'delta' (each blob compressed with the
 * previous state's pages at the same addresses as a raw dictionary) | 'delta0' (the same against the first
 * state's pages: one level of reference, as a keyframe would give). Both deltas change the format: they
 * are here for scale only.
 * Returns bytes by object kind.
 */
function packSeries(states, { blobPages, level, order = 'arrival' }) {
  const cmp = new Compressor();
  cmp.setParameters({ compressionLevel: level });
  const out = { blobBytes: 0, trailerBytes: 0, indexBytes: 0, pages: 0, blobs: 0, perState: [] };
  const cap = Number.isFinite(blobPages) ? blobPages : 1 << 20;
  const buf = Buffer.allocUnsafe(Math.min(cap, 1 << 16) * PS);
  for (const [si, st] of states.entries()) {
    const { fresh } = st;
    const seq = orderOf(fresh, order);
    const ends = order !== 'similar' ? new Set(st.chunkEnds) : undefined;
    const before = out.blobBytes;
    let blob = [];
    let packBytes = 0;
    let packPages = 0;
    const closeBlob = () => {
      if (!blob.length) return;
      const raw = blob.length * PS <= buf.length ? buf.subarray(0, blob.length * PS) : Buffer.allocUnsafe(blob.length * PS);
      blob.forEach((i, k) => fresh.data[i].copy(raw, k * PS));
      let c = cmp;
      if (order === 'delta' || order === 'delta0') {
        const prev = si > 0 ? states[order === 'delta' ? si - 1 : 0].byAddr : undefined;
        const ref = blob.map((i) => prev?.get(fresh.addr[i])).filter(Boolean);
        if (ref.length) {
          c = new Compressor();
          c.setParameters({ compressionLevel: level });
          c.loadDictionary(Buffer.concat(ref));
        }
      }
      const z = c.compress(raw);
      out.blobBytes += z.length;
      out.blobs++;
      packBytes += z.length;
      packPages += blob.length;
      blob = [];
    };
    const seal = () => {
      closeBlob();
      if (!packPages) return;
      out.trailerBytes += PACK_FIXED + TRAILER_PER_PAGE * packPages;
      out.indexBytes += INDEX_FIXED + INDEX_PER_PAGE * packPages;
      out.pages += packPages;
      packBytes = 0;
      packPages = 0;
    };
    seq.forEach((i, k) => {
      if (order === 'vma' && blob.length && fresh.vma[blob[0]] !== fresh.vma[i]) closeBlob();
      blob.push(i);
      if (blob.length === cap) closeBlob();
      // The compactor checks for a full pack after each page chunk (fixed 255-page steps when reordered).
      const chunkEnd = ends ? ends.has(k + 1) : (k + 1) % 255 === 0;
      if (chunkEnd && packBytes >= PACK_TARGET) seal();
    });
    seal();
    out.perState.push(out.blobBytes - before);
  }
  return out;
}

/**
 * The cost side of one blob size and level, on `pages` (new pages in arrival order), best of `reps`:
 * compress MB/s (pages in, one thread, as the compactor's main thread does it), inflate MB/s (every blob
 * once: a full restore's work, pages out), and per random single-page read (a whole blob inflates for one
 * page, no cache) its µs and the compressed bytes a ranged GET fetches.
 */
function blobCost(pages, blobPages, level, { reps = 3, samples = 2000 } = {}) {
  const cmp = new Compressor();
  cmp.setParameters({ compressionLevel: level });
  const d = new Decompressor();
  const raws = [];
  for (let i = 0; i < pages.length; i += blobPages) {
    const n = Math.min(blobPages, pages.length - i);
    const raw = Buffer.allocUnsafe(n * PS);
    for (let k = 0; k < n; k++) pages[i + k].copy(raw, k * PS);
    raws.push(raw);
  }
  const bytes = pages.length * PS;
  const best = (fn) => {
    let ms = Infinity;
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      fn();
      ms = Math.min(ms, performance.now() - t0);
    }
    return ms;
  };
  let zs = [];
  const cMs = best(() => (zs = raws.map((r) => cmp.compress(r))));
  const dMs = best(() => zs.forEach((z) => d.decompress(z)));
  const pick = [];
  let rnd = 12345;
  for (let s = 0; s < samples; s++) {
    rnd = (rnd * 1103515245 + 12345) & 0x7fffffff;
    pick.push(Math.floor((rnd % pages.length) / blobPages));
  }
  const oneMs = best(() => pick.forEach((b) => d.decompress(zs[b])));
  return {
    blobPages, level, compressMBs: bytes / 1e6 / (cMs / 1000), inflateMBs: bytes / 1e6 / (dMs / 1000),
    usPerRandomPage: (oneMs * 1000) / samples, fetchedPerRandomPage: pick.reduce((n, b) => n + zs[b].length, 0) / samples,
    bytesPerPage: zs.reduce((n, z) => n + z.length, 0) / pages.length,
  };
}

/**
 * Page-map bytes over the series for one leaf size, built by pagevault's own buildPageMap: nodes stored once by
 * sha, raw, as stored (zstd -1 when smaller) and each zstd-compressed
 * (level `zlevel`), and how much of the raw bytes are page hashes. Per state: bytes written.
 */
function mapSeries(states, leafPages, { fanout = 256, zlevel = 3 } = {}) {
  const stored = new Set();
  const cmp = new Compressor();
  cmp.setParameters({ compressionLevel: zlevel });
  const out = { nodes: 0, bytes: 0, zBytes: 0, storedBytes: 0, hashBytes: 0, leaves: 0, perState: [] };
  for (const st of states) {
    let written = 0;
    for (const list of st.lists) {
      // The real map builder at this leaf size; nodes weighed by their raw bytes, before pagevault's own
      // zstd -1 of each node. A leaf is a 12-byte head, 12 bytes a run, then its pages' hashes.
      buildPageMap(list, list.order('map'), (node) => {
        if (stored.has(node.sha)) return;
        stored.add(node.sha);
        const raw = mapNodeBytes(node.bytes);
        out.nodes++;
        out.bytes += raw.length;
        out.zBytes += Math.min(raw.length, cmp.compress(raw).length);
        if (raw[5] === 0) {
          out.leaves++;
          out.hashBytes += raw.length - 12 - raw.readUInt32LE(8) * 12;
        }
        out.storedBytes += node.bytes.length;
        written += raw.length;
      }, { leafPages, fanout });
    }
    out.perState.push(written);
  }
  return out;
}

module.exports = { PS, frames, decodeState, packSeries, blobCost, mapSeries };
