import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes, PvError } from '@pagevault/errors';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FORMAT_VERSION, HEADER_BYTES, MAGIC } from './constants';
import { FrameSplitter } from './frame';
import { StreamValidator } from './stream-validator';

/**
 * Whole streams damaged on purpose. Whatever the damage, reading must end in a PvError with a PV_ code:
 * never a crash with another error, never a hang, never an allocation sized by a damaged field, and
 * never a snapshot taken as complete.
 */
const DIR = join(__dirname, '..', 'test-vectors');
const VECTORS = ['full-snapshot', 'incremental-snapshot', 'aborted-stream', 'small-frames'].map((name) => {
  const bin = readFileSync(join(DIR, `${name}.bin`));
  const json = JSON.parse(readFileSync(join(DIR, `${name}.json`), 'utf8'));
  const frames: { offset: number; length: number }[] = json.frames;
  const raw = frames.map((f) => bin.subarray(f.offset, f.offset + HEADER_BYTES + f.length));
  return { name, bin, raw, id: Buffer.from(json.snapshotId, 'hex'), final: json.abort ? 'abort' : 'end' };
});

/** Reads a whole stream as a consumer does; returns the final state, or the PV_ code it was refused with. */
function outcome(bin: Buffer, id: Buffer, cuts: number[] = []): string {
  try {
    const s = new FrameSplitter();
    const v = new StreamValidator(id);
    let from = 0;
    for (const to of [...cuts, bin.length]) {
      for (const f of s.push(bin.subarray(from, to))) v.accept(f);
      from = to;
    }
    s.end();
    return v.state;
  } catch (e) {
    if (e instanceof PvError && e.code.startsWith('PV_')) return e.code;
    throw e;
  }
}

/**
 * Whether a stream damaged only inside the frame starting at `off` is refused. The frames before it are
 * untouched and valid, and the splitter holds nothing between frames, so reading from `off` with a fresh
 * splitter is what the full read does from there on; only if the damaged frame still decodes (a CRC
 * collision) is the whole stream read to decide. This keeps "every byte" tests linear, not quadratic.
 */
function refusedFrom(bin: Buffer, off: number, id: Buffer): string {
  try {
    const s = new FrameSplitter();
    s.push(bin.subarray(off));
    s.end();
  } catch (e) {
    if (e instanceof PvError && e.code.startsWith('PV_')) return e.code;
    throw e;
  }
  return outcome(bin, id);
}

/** A small deterministic generator, so "every byte" tests use varied but repeatable deltas. */
function deltas(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return 1 + ((x >>> 0) % 255);
  };
}

// Hundreds of thousands of refusals below: stack traces would cost most of the run time.
const stackTraceLimit = Error.stackTraceLimit;
beforeAll(() => {
  Error.stackTraceLimit = 0;
});
afterAll(() => {
  Error.stackTraceLimit = stackTraceLimit;
});

describe.each(VECTORS)('the $name vector', ({ bin, raw, id, final }) => {
  const starts = raw.map((_, k) => raw.slice(0, k).reduce((n, f) => n + f.length, 0));

  it('reads to its final state untouched', () => expect(outcome(bin, id)).toBe(final));

  it('is refused with any single byte changed, at every offset', () => {
    const next = deltas(bin.length);
    const b = Buffer.from(bin);
    raw.forEach((f, k) => {
      for (let i = starts[k]!; i < starts[k]! + f.length; i++) {
        const was = b[i]!;
        b[i] = was ^ next();
        const got = refusedFrom(b, starts[k]!, id);
        b[i] = was;
        if (!got.startsWith('PV_')) throw new Error(`byte ${i} changed and the stream still read as "${got}"`);
      }
    });
  });

  it('is refused with random bytes changed in random places', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }), fc.array(fc.nat(), { maxLength: 4 }), (edits, cuts) => {
        const b = Buffer.from(bin);
        for (const [at, d] of edits) b[at % b.length]! ^= d;
        if (b.equals(bin)) return; // two edits cancelled out
        const c = cuts.map((x) => x % (b.length + 1)).sort((x, y) => x - y);
        expect(outcome(b, id, c)).toMatch(/^PV_/);
      }),
      { numRuns: 300 },
    );
  });

  it('never reads as complete when cut short, at every length', () => {
    // At a frame boundary the whole prefix is read: it is valid so far, and still open.
    for (const n of starts) expect(outcome(bin.subarray(0, n), id)).toBe('open');
    // Inside a frame: the frames before it read as above, and the splitter holds only this one's bytes.
    for (const f of raw) {
      for (let n = 1; n < f.length; n++) {
        const s = new FrameSplitter();
        if (s.push(f.subarray(0, n)).length > 0) throw new Error(`a frame cut to ${n} bytes was decoded`);
        let code = 'none';
        try {
          s.end();
        } catch (e) {
          code = (e as PvError).code;
        }
        if (code !== ErrorCodes.FRAME_TRUNCATED) throw new Error(`a frame cut to ${n} bytes ended with ${code}`);
      }
    }
    // And a sample of cuts read end to end.
    fc.assert(
      fc.property(fc.integer({ min: 1, max: bin.length - 1 }), (n) => {
        expect(outcome(bin.subarray(0, n), id)).toBe(starts.includes(n) ? 'open' : ErrorCodes.FRAME_TRUNCATED);
      }),
      { numRuns: 100 },
    );
  });

  it('is refused with a frame dropped, repeated or swapped with its neighbour (as a log might redeliver)', () => {
    for (let i = 0; i < raw.length; i++) {
      const dropped = [...raw.slice(0, i), ...raw.slice(i + 1)];
      const repeated = [...raw.slice(0, i + 1), ...raw.slice(i)];
      expect(outcome(Buffer.concat(dropped), id)).toMatch(i === raw.length - 1 ? /^open$/ : /^PV_STREAM_SEQUENCE$/);
      expect(outcome(Buffer.concat(repeated), id)).toMatch(i === raw.length - 1 ? /^PV_STREAM_ORDER$/ : /^PV_STREAM_SEQUENCE$/);
      if (i + 1 < raw.length) {
        const swapped = [...raw.slice(0, i), raw[i + 1]!, raw[i]!, ...raw.slice(i + 2)];
        expect(outcome(Buffer.concat(swapped), id)).toBe(ErrorCodes.STREAM_SEQUENCE);
      }
    }
  });

  it('is refused when read as another snapshot', () => {
    expect(outcome(bin, Buffer.alloc(16, 0x99))).toBe(ErrorCodes.STREAM_ORDER);
  });
});

// Magic, version, type, flags and length steer the reader before any CRC is checked: try every value,
// in the vectors with few frames (the others repeat the same frame types).
describe.each(VECTORS.filter((v) => v.raw.length <= 12))('the header fields of the $name vector', ({ bin, raw, id }) => {
  const starts = raw.map((_, k) => raw.slice(0, k).reduce((n, f) => n + f.length, 0));

  it('is refused with any of the first 12 header bytes of any frame set to any other value', () => {
    const b = Buffer.from(bin);
    raw.forEach((_, k) => {
      for (let i = starts[k]!; i < starts[k]! + 12; i++) {
        const was = b[i]!;
        for (let v = 0; v < 256; v++) {
          if (v === was) continue;
          b[i] = v;
          const got = refusedFrom(b, starts[k]!, id);
          if (!got.startsWith('PV_')) throw new Error(`header byte ${i} = ${v} read as "${got}"`);
        }
        b[i] = was;
      }
    });
  });
});

describe('arbitrary bytes', () => {
  it('are refused with a PV_ code or wait for more, and never crash', () => {
    const prefix = fc.constantFrom(
      Buffer.alloc(0),
      MAGIC,
      Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION])]),
      Buffer.concat([MAGIC, Buffer.from([FORMAT_VERSION, 3, 0, 0])]),
    );
    fc.assert(
      fc.property(prefix, fc.uint8Array({ maxLength: 300 }), (p, tail) => {
        const bin = Buffer.concat([p, tail]);
        const got = outcome(bin, Buffer.alloc(16));
        expect(got === 'open' || got.startsWith('PV_')).toBe(true);
        if (bin.length > 0) expect(got).not.toBe('end');
      }),
      { numRuns: 2000 },
    );
  });

  it('announcing any payload length are held to the maximum frame before anything is buffered', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), fc.integer({ min: 1, max: 9 }), (len, type) => {
        const head = Buffer.alloc(HEADER_BYTES);
        MAGIC.copy(head);
        head[4] = FORMAT_VERSION;
        head[5] = type;
        head.writeUInt32LE(len, 8);
        const s = new FrameSplitter(64 * 1024);
        let code = 'waiting';
        try {
          s.push(head);
        } catch (e) {
          code = (e as PvError).code;
        }
        // a zero-length frame is whole at once, and its zero CRC is wrong
        expect(code).toBe(len > 64 * 1024 - HEADER_BYTES ? ErrorCodes.FRAME_TOO_LARGE : len === 0 ? ErrorCodes.FRAME_BAD_CRC : 'waiting');
      }),
      { numRuns: 1000 },
    );
  });
});
