import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import { ErrorCodes } from '@pagevault/errors';
import { FrameSplitter } from '@pagevault/format';
import { writeStream } from './stream-file';
import { collect, replay, syntheticFrames } from './testing/synthetic-frames';

const work = mkdtempSync(join(tmpdir(), 'pv-stream-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const snap = { vmas: [{ start: 0x10000, pages: 600, data: Array.from({ length: 500 }, (_, i) => i), zero: [550], file: [599] }] };

describe('writeStream', () => {
  it('writes the frames back to back, byte for byte, and FrameSplitter reads them back', async () => {
    const frames = await collect(syntheticFrames(snap));
    const path = join(work, 'a.pvs');
    const stats = await writeStream(replay(frames), path);
    const bytes = readFileSync(path);
    expect(bytes.equals(Buffer.concat(frames.map((f) => f.raw)))).toBe(true);
    expect(stats).toMatchObject({ bytesWritten: bytes.length, frames: frames.length, vmas: 1, pages: { data: 500, zero: 1, file: 1, fileMissing: 0 } });
    const back = new FrameSplitter().push(bytes);
    expect(back.map((f) => f.sequence)).toEqual(frames.map((f) => f.sequence));
  });

  it('waits for drain on a slow Writable and leaves it open', async () => {
    const chunks: Buffer[] = [];
    let drains = 0;
    const slow = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, cb) {
        chunks.push(chunk);
        setImmediate(cb);
      },
    });
    slow.on('drain', () => drains++);
    const frames = await collect(syntheticFrames(snap));
    await writeStream(replay(frames), slow);
    expect(slow.writableEnded).toBe(false);
    await new Promise((r) => slow.end(r));
    expect(Buffer.concat(chunks).equals(Buffer.concat(frames.map((f) => f.raw)))).toBe(true);
    expect(drains).toBeGreaterThan(0);
  });

  it('leaves no file when the stream is cut short', async () => {
    const frames = await collect(syntheticFrames(snap));
    const path = join(work, 'b.pvs');
    await expect(writeStream(replay(frames.slice(0, 3)), path)).rejects.toMatchObject({ code: ErrorCodes.FRAME_TRUNCATED });
    expect(existsSync(path)).toBe(false);
    expect(readdirSync(work).filter((n) => n.startsWith('b.pvs'))).toEqual([]);
  });
});
