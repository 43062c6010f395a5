import type { FileHandle } from 'node:fs/promises';
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

/** One positional write, repeated only if the kernel wrote less than asked (it rarely does for files). */
export async function writeFully(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
  wrote(fh, done);
  return done;
}
