import { writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import koffi from 'koffi';

/**
 * Alignment of direct I/O (O_DIRECT): file offsets, lengths and buffer addresses must be multiples of the
 * device's logical block size; 4096 is a multiple of every one in use.
 */
export const DIRECT_ALIGN = 4096;

/** `n` rounded up to a multiple of DIRECT_ALIGN. */
export function alignUp(n: number): number {
  return Math.ceil(n / DIRECT_ALIGN) * DIRECT_ALIGN;
}

/** A buffer whose first byte is DIRECT_ALIGN-aligned in memory (a Buffer's backing store never moves). */
export function alignedBuffer(bytes: number): Buffer {
  const raw = Buffer.allocUnsafeSlow(bytes + DIRECT_ALIGN);
  const skip = (DIRECT_ALIGN - Number(koffi.address(raw) % BigInt(DIRECT_ALIGN))) % DIRECT_ALIGN;
  return raw.subarray(skip, skip + bytes);
}

/**
 * `buf` extended to a multiple of DIRECT_ALIGN bytes, when that is possible without copying: it starts
 * DIRECT_ALIGN-aligned in memory and its backing store has room for the padding (a frame from a
 * FramePool has). A direct write can then take it as it is; undefined otherwise. The padding's bytes are
 * whatever the store holds there.
 */
export function paddedView(buf: Buffer): Buffer | undefined {
  const padded = alignUp(buf.length);
  if (buf.byteOffset + padded > buf.buffer.byteLength) return undefined;
  if (koffi.address(buf) % BigInt(DIRECT_ALIGN) !== 0n) return undefined;
  return Buffer.from(buf.buffer, buf.byteOffset, padded);
}

/**
 * Writes all of `buf` at `position`: one positional write, continued only if the kernel took less (it
 * rarely does for files). A write that takes nothing fails with EIO instead of looping.
 */
export async function writeFullyAt(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  for (let done = 0; done < buf.length; ) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    if (bytesWritten === 0) throw Object.assign(new Error(`wrote 0 of ${buf.length - done} bytes at ${position + done}`), { code: 'EIO' });
    done += bytesWritten;
  }
}

/** writeFullyAt with synchronous calls on a descriptor: for small writes, where a promise costs more than the write. */
export function writeFullyAtSync(fd: number, buf: Buffer, position: number): void {
  for (let done = 0; done < buf.length; ) {
    const n = writeSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw Object.assign(new Error(`wrote 0 of ${buf.length - done} bytes at ${position + done}`), { code: 'EIO' });
    done += n;
  }
}
