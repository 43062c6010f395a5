import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { beginJson, buildVector, hexAddr, patternBytes, VECTOR_CASES, vmaHeaderJson } from '../scripts/make-vectors';
import { FrameType } from './constants';
import { FrameSplitter } from './frame';
import { SnapshotWriter } from './snapshot-writer';
import { StreamValidator } from './stream-validator';
import type { Frame } from './types';

// PV_WRITE_VECTORS=1 rewrites the files from scripts/make-vectors.ts; otherwise they are only read.
const WRITE = process.env['PV_WRITE_VECTORS'] === '1';
const DIR = join(__dirname, '..', 'test-vectors');

type Json = ReturnType<typeof JSON.parse>;

/** Splits, decodes and validates a whole stream, feeding it in pieces cut at the given offsets. */
function readStream(bin: Buffer, cuts: number[] = []): { frames: Frame[]; validator: StreamValidator } {
  const splitter = new FrameSplitter(64 * 1024 * 1024);
  const frames: Frame[] = [];
  let from = 0;
  for (const to of [...cuts, bin.length]) {
    frames.push(...splitter.push(bin.subarray(from, to)));
    from = to;
  }
  splitter.end();
  const validator = new StreamValidator(frames[0]!.snapshotId);
  for (const f of frames) validator.accept(f);
  return { frames, validator };
}

/** What a reader saw, in the shape of the vector's JSON (page contents as SHA-256). */
function observe(frames: Frame[], bin: Buffer): Json {
  const vmas: Json[] = [];
  let vma: Json | undefined;
  const out: Json = { begin: null, vmas, end: null, abort: null, frames: [] };
  let offset = 0;
  for (const f of frames) {
    out.frames.push({ sequence: f.sequence, offset, type: FrameType[f.type], length: f.length, crc32c: f.crc.toString(16).padStart(8, '0') });
    expect(bin.subarray(offset, offset + f.raw.length).equals(f.raw)).toBe(true);
    offset += f.raw.length;
    const b = f.body;
    switch (b.type) {
      case FrameType.SnapshotBegin:
        out.begin = beginJson(b.begin);
        break;
      case FrameType.VmaBegin:
        vma = { ...vmaHeaderJson(b.vma), open: true, pages: [], zeroRuns: [], fileRuns: [], parentRuns: [] };
        vmas.push(vma);
        break;
      case FrameType.PageChunk:
        b.addresses.forEach((a, i) =>
          vma.pages.push({
            address: hexAddr(a),
            sha256: createHash('sha256').update(b.data.subarray(i * b.pageSize, (i + 1) * b.pageSize)).digest('hex'),
          }),
        );
        break;
      case FrameType.ZeroRuns:
      case FrameType.FileRuns:
      case FrameType.ParentRuns: {
        const key = b.type === FrameType.ZeroRuns ? 'zeroRuns' : b.type === FrameType.FileRuns ? 'fileRuns' : 'parentRuns';
        for (const r of b.runs) vma[key].push({ start: hexAddr(r.start), pages: r.pages });
        break;
      }
      case FrameType.VmaEnd:
        delete vma.open;
        break;
      case FrameType.SnapshotEnd:
        out.end = { ...b.end, digest: Buffer.from(b.end.digest).toString('hex') };
        break;
      case FrameType.Abort:
        out.abort = { code: b.code, message: b.message };
        break;
    }
  }
  return out;
}

/** Writes the decoded snapshot again with SnapshotWriter, as the restorer does. */
function reencode(frames: Frame[], maxFrameBytes: number | null): Buffer {
  const out: Buffer[] = [];
  const w = new SnapshotWriter({
    snapshotId: frames[0]!.snapshotId,
    emit: (f) => out.push(f),
    ...(maxFrameBytes ? { maxFrameBytes } : {}),
  });
  for (const { body: b } of frames) {
    switch (b.type) {
      case FrameType.SnapshotBegin: w.begin(b.begin); break;
      case FrameType.VmaBegin: {
        const { index, ...header } = b.vma;
        expect(w.beginVma(header)).toBe(index);
        break;
      }
      case FrameType.PageChunk: w.addPages(b.addresses, b.data); break;
      case FrameType.ZeroRuns: for (const r of b.runs) w.addZero(r.start, r.pages); break;
      case FrameType.FileRuns: for (const r of b.runs) w.addFile(r.start, r.pages); break;
      case FrameType.ParentRuns: for (const r of b.runs) w.addParent(r.start, r.pages); break;
      case FrameType.VmaEnd: w.endVma(); break;
      case FrameType.SnapshotEnd: w.end(); break;
      case FrameType.Abort: w.abort(b.code, b.message); break;
    }
  }
  return Buffer.concat(out);
}

describe.each(VECTOR_CASES.map((c) => [c.name, c] as const))('golden vector %s', (name, c) => {
  const binPath = join(DIR, `${name}.bin`);
  const jsonPath = join(DIR, `${name}.json`);
  if (WRITE) {
    const v = buildVector(c);
    writeFileSync(binPath, v.bin);
    writeFileSync(jsonPath, v.json);
  }
  const bin = readFileSync(binPath);
  const expected = JSON.parse(readFileSync(jsonPath, 'utf8'));

  it('is what scripts/make-vectors.ts builds today, byte for byte', () => {
    const v = buildVector(c);
    expect(v.bin.equals(bin)).toBe(true);
    expect(v.json).toBe(readFileSync(jsonPath, 'utf8'));
    expect(createHash('sha256').update(bin).digest('hex')).toBe(expected.sha256);
  });

  it('decodes, frame by frame, to the values in its JSON and validates to the right end state', () => {
    const { frames, validator } = readStream(bin);
    expect(validator.state).toBe(expected.abort ? 'abort' : 'end');
    const seen = observe(frames, bin);
    const want = {
      begin: expected.begin,
      vmas: expected.vmas.map((v: Json) => ({ ...v, pages: v.pages.map((p: Json) => ({ address: p.address, sha256: p.sha256 })) })),
      end: expected.end,
      abort: expected.abort,
      frames: expected.frames,
    };
    expect(seen).toEqual(want);
  });

  it('carries page contents equal to the patterns its JSON names', () => {
    const { frames } = readStream(bin);
    const byAddress = new Map<string, Buffer>();
    for (const { body: b } of frames) {
      if (b.type !== FrameType.PageChunk) continue;
      b.addresses.forEach((a, i) => byAddress.set(hexAddr(a), b.data.subarray(i * b.pageSize, (i + 1) * b.pageSize)));
    }
    const pages = expected.vmas.flatMap((v: Json) => v.pages);
    expect(byAddress.size).toBe(pages.length);
    for (const p of pages) expect(byAddress.get(p.address)!.equals(patternBytes(p.pattern, expected.begin.pageSize))).toBe(true);
  });

  it('decodes the same whatever the stream is cut into', () => {
    const whole = observe(readStream(bin).frames, bin);
    const step = Math.max(1, Math.floor(bin.length / 97));
    const everyStep = Array.from({ length: Math.floor((bin.length - 1) / step) }, (_, i) => (i + 1) * step);
    expect(observe(readStream(bin, everyStep).frames, bin)).toEqual(whole);
    const frameEdges = expected.frames.map((f: Json) => f.offset).filter((o: number) => o > 0);
    expect(observe(readStream(bin, frameEdges).frames, bin)).toEqual(whole);
  });

  it('re-encodes from its decoded values to the same bytes (the canonical order is unique)', () => {
    const { frames } = readStream(bin);
    expect(reencode(frames, expected.maxFrameBytes).equals(bin)).toBe(true);
  });
});
