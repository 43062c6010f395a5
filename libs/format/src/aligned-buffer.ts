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
