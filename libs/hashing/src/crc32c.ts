import { crc32c as rsCrc32c } from '@node-rs/crc32';
import koffi from 'koffi';
import { NATIVE_LIB_PATH, openNativeLib } from './native-lib';

/**
 * CRC32C of data, continuing from `initial` (0 to start; chain calls as with zlib's crc32), unsigned.
 */
export type Crc32c = (data: Uint8Array, initial?: number) => number;

/** The C declarations of native/crc32c.c, for threads that bind the library themselves. */
export const CRC32C_DECLS = {
  crc32c: 'uint32_t pv_crc32c(uint32_t crc, uintptr_t p, size_t len)',
  frame: 'uint32_t pv_frame_crc32c(uintptr_t frame, size_t len, size_t crcOffset, size_t bodyAt)',
  supported: 'int pv_crc32c_supported(void)',
} as const;

interface NativeCrc {
  crc32c: Crc32c;
  frame: (frame: Uint8Array, crcOffset: number, bodyAt: number) => number;
}

/**
 * Binds native/crc32c.c (three CRC streams at once, ~4x @node-rs/crc32's single stream here) and checks
 * it against @node-rs/crc32 and the standard check value before anyone relies on it. Undefined when the
 * library is missing or off (PV_NATIVE_HASH=0), the CPU has no SSE4.2 (or is not x86-64), or a check
 * fails: then @node-rs/crc32 computes every CRC, with the same results.
 */
export function loadNativeCrc32c(path = NATIVE_LIB_PATH): NativeCrc | undefined {
  const lib = openNativeLib(path);
  if (!lib) return undefined;
  try {
    if (!lib.func(CRC32C_DECLS.supported)()) return undefined;
    const one = lib.func(CRC32C_DECLS.crc32c);
    const frame = lib.func(CRC32C_DECLS.frame);
    const native: NativeCrc = {
      crc32c: (data, initial = 0) => one(initial, koffi.address(data), data.length) >>> 0,
      frame: (f, crcOffset, bodyAt) => {
        if (f.length < bodyAt || crcOffset > bodyAt) throw new RangeError(`frame of ${f.length} bytes has no body at ${bodyAt}`);
        return frame(koffi.address(f), f.length, crcOffset, bodyAt) >>> 0;
      },
    };
    return selfCheck(native) ? native : undefined;
  } catch {
    return undefined;
  }
}

function selfCheck(n: NativeCrc): boolean {
  if (n.crc32c(Buffer.from('123456789')) !== 0xe3069283) return false;
  // Every path: unaligned heads, the 3 × 8192 and 3 × 256 blocks, 8-byte steps and byte tails, chained.
  const data = Buffer.alloc(3 * 8192 * 2 + 3 * 256 + 13);
  for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
  for (const [from, to] of [[0, data.length], [3, data.length - 5], [1, 700], [5, 5]]) {
    const s = data.subarray(from, to);
    const want = rsCrc32c(s) >>> 0;
    const half = s.length >> 1;
    if (n.crc32c(s) !== want || n.crc32c(s.subarray(half), n.crc32c(s.subarray(0, half))) !== want) return false;
  }
  const f = data.subarray(1, 4001);
  return n.frame(f, 32, 36) === rsCrc32c(f.subarray(36), rsCrc32c(f.subarray(0, 32))) >>> 0;
}

const native = loadNativeCrc32c();

/** Which implementation crc32c and frameCrc32c use in this process. */
export const crc32cImplementation: 'native' | '@node-rs/crc32' = native ? 'native' : '@node-rs/crc32';

/** The path of the native library when this process uses it (a helper thread binds the same one). */
export const nativeCrc32cLib: string | undefined = native ? NATIVE_LIB_PATH : undefined;

export const crc32c: Crc32c = native ? native.crc32c : (data, initial = 0) => rsCrc32c(asBuffer(data), initial) >>> 0;

/** CRC32C of frame[0, crcOffset) then frame[bodyAt, end): the header up to its CRC field, then the body. */
export const frameCrc32c: (frame: Uint8Array, crcOffset: number, bodyAt: number) => number = native
  ? native.frame
  : (f, crcOffset, bodyAt) => crc32c(f.subarray(bodyAt), crc32c(f.subarray(0, crcOffset)));

function asBuffer(d: Uint8Array): Buffer {
  return Buffer.isBuffer(d) ? d : Buffer.from(d.buffer, d.byteOffset, d.length);
}
