import { hash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';

/** Where scripts/build-native.cjs puts the batch hashing library (the same from src/ and dist/). */
export const NATIVE_SHA256_PATH = join(__dirname, '..', 'native', 'build', 'libpvsha256.so');

/** SHA-256 of many pages in one FFI call each (native/sha256-pages.c, OpenSSL underneath). */
export interface NativeSha256 {
  /** Pages first..first+n-1 of data into out[32(at + k)]. */
  pages(data: Uint8Array, first: number, n: number, ps: number, out: Uint8Array, at: number): void;
  /** Pages idx[first..first+n-1] of data into out[32(at + k)]. */
  at(data: Uint8Array, ps: number, idx: Int32Array, first: number, n: number, out: Uint8Array, at: number): void;
}

/**
 * Binds the library at path, and checks it against node:crypto on two pages before anyone relies on it.
 * Undefined when it is missing, does not load (a Node whose OpenSSL symbols are not exported), or
 * disagrees: PageHasher then hashes with node:crypto. The same function runs in PageHasher's helpers.
 */
export function loadNativeSha256(path = NATIVE_SHA256_PATH): NativeSha256 | undefined {
  if (process.env['PV_NATIVE_HASH'] === '0' || !existsSync(path)) return undefined;
  try {
    const lib = koffi.load(path);
    const pages = lib.func('void pv_sha256_pages(const uint8_t *data, uint32_t first, uint32_t n, uint32_t ps, _Out_ uint8_t *out, uint32_t at)');
    const at = lib.func('void pv_sha256_at(const uint8_t *data, uint32_t ps, const int32_t *idx, uint32_t first, uint32_t n, _Out_ uint8_t *out, uint32_t at)');
    const native: NativeSha256 = { pages, at };
    const probe = Buffer.alloc(2 * 4096, 0x5a);
    probe.write('pagevault', 4096);
    const got = Buffer.alloc(64);
    native.pages(probe, 0, 2, 4096, got, 0);
    const want = Buffer.concat([0, 1].map((p) => hash('sha256', probe.subarray(p * 4096, (p + 1) * 4096), 'buffer') as unknown as Buffer));
    return got.equals(want) ? native : undefined;
  } catch {
    return undefined;
  }
}
