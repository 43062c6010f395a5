import type { FileHandle } from 'node:fs/promises';
import { writeFullyAt } from '@pagevault/format';
import { wrote } from './early-flush';
import type { OutputFile } from './output-file';
import { chunkRuns } from './page-runs';

/**
 * Writes a chunk's pages into a sparse file: the page at address `a` goes to `fileOffset(a)`, one
 * positional write per run of consecutive pages (a full chunk of consecutive pages is one write). Nothing
 * is written between runs, so pages the chunk does not carry stay holes. Returns the bytes written.
 */
export async function writeChunkAt(
  out: OutputFile,
  addresses: ArrayLike<number>,
  data: Buffer,
  pageSize: number,
  fileOffset: (addr: number) => number,
): Promise<number> {
  let bytes = 0;
  for (const r of chunkRuns(addresses, pageSize)) {
    bytes += await out.write(data.subarray(r.first * pageSize, (r.first + r.pages) * pageSize), fileOffset(r.addr));
  }
  return bytes;
}

/** All of buf at position (writeFullyAt), counted for the file's early flush; returns its length. */
export async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  await writeFullyAt(fh, buf, position);
  wrote(fh, buf.length);
  return buf.length;
}
