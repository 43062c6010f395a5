import { hash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';

/** Where scripts/build-native.cjs puts the batch hashing library (the same from src/ and dist/). */
export const NATIVE_LIB_PATH = join(__dirname, '..', 'native', 'build', 'libpvpagehash.so');

/**
 * What a page hash is: 'sha256', a stored page's identity (and what a stored page map holds), or
 * 'xxh3-128', change detection only (is this page the same as when the agent last read it?), keyed by a
 * secret of this process, ~6× cheaper. Only the native library has XXH3.
 */
export type PageHashKind = 'sha256' | 'xxh3-128';

/** Bytes of one page's hash, by kind. */
export const PAGE_HASH_BYTES: Readonly<Record<PageHashKind, number>> = { sha256: 32, 'xxh3-128': 16 };

/**
 * The XXH3 secret of this process (XXH3's own default is 192 bytes): random, so a target cannot craft a
 * page that collides with its previous contents. Hashes of this kind mean nothing to another process.
 */
export const XXH3_SECRET = randomBytes(192);

/**
 * How the native library computes SHA-256: 'sha-ni-x2', two pages at a time with the CPU's SHA
 * extensions (x86-64 with SHA-NI), or 'openssl', a page at a time (anywhere else, or PV_SHA256_NI=0).
 */
export type NativeSha256 = 'sha-ni-x2' | 'openssl';

/** Many pages hashed in one FFI call (native/sha256-pages.c with SHA-NI or OpenSSL, native/xxh3-pages.c with xxHash). */
export interface NativePageHash {
  /** How SHA-256 is computed, decided once per process. */
  readonly sha256: NativeSha256;
  /** Pages first..first+n-1 of data into out[w(at + k)], w = PAGE_HASH_BYTES[kind]. */
  pages(kind: PageHashKind, data: Uint8Array, first: number, n: number, ps: number, out: Uint8Array, at: number): void;
  /** Pages idx[first..first+n-1] of data into out[w(at + k)]. */
  at(kind: PageHashKind, data: Uint8Array, ps: number, idx: Int32Array, first: number, n: number, out: Uint8Array, at: number): void;
}

/** The C declarations, shared with PageHasher's helper threads (which bind them by address instead). */
export const NATIVE_DECLS = {
  sha256Pages: 'void pv_sha256_pages(uintptr_t data, uint32_t first, uint32_t n, uint32_t ps, _Out_ uint8_t *out, uint32_t at)',
  sha256At: 'void pv_sha256_at(uintptr_t data, uint32_t ps, uintptr_t idx, uint32_t first, uint32_t n, _Out_ uint8_t *out, uint32_t at)',
  sha256Impl: 'int pv_sha256_impl()',
  xxh3Pages: 'void pv_xxh3_pages(uintptr_t data, uint32_t first, uint32_t n, uint32_t ps, _Out_ uint8_t *out, uint32_t at, const uint8_t *secret, uint32_t secretLen)',
  xxh3At: 'void pv_xxh3_at(uintptr_t data, uint32_t ps, uintptr_t idx, uint32_t first, uint32_t n, _Out_ uint8_t *out, uint32_t at, const uint8_t *secret, uint32_t secretLen)',
} as const;

/**
 * Binds the library at path and checks it before anyone relies on it: SHA-256 against node:crypto, XXH3
 * for equal pages hashing equal and a changed byte changing the hash, by both entry points. Undefined
 * when it is missing, does not load (a Node whose OpenSSL symbols are not exported), or fails a check:
 * PageHasher then hashes SHA-256 with node:crypto. The same functions run in PageHasher's helpers.
 */
export function loadNativePageHash(path = NATIVE_LIB_PATH): NativePageHash | undefined {
  const lib = openNativeLib(path);
  if (!lib) return undefined;
  try {
    const f = {
      sha256Pages: lib.func(NATIVE_DECLS.sha256Pages),
      sha256At: lib.func(NATIVE_DECLS.sha256At),
      xxh3Pages: lib.func(NATIVE_DECLS.xxh3Pages),
      xxh3At: lib.func(NATIVE_DECLS.xxh3At),
      sha256Impl: lib.func(NATIVE_DECLS.sha256Impl),
    };
    const addr = (b: ArrayBufferView): bigint => koffi.address(b) as bigint;
    const native: NativePageHash = {
      sha256: f.sha256Impl() === 2 ? 'sha-ni-x2' : 'openssl',
      pages: (kind, data, first, n, ps, out, at) =>
        kind === 'sha256' ? f.sha256Pages(addr(data), first, n, ps, out, at) : f.xxh3Pages(addr(data), first, n, ps, out, at, XXH3_SECRET, XXH3_SECRET.length),
      at: (kind, data, ps, idx, first, n, out, at) =>
        kind === 'sha256'
          ? f.sha256At(addr(data), ps, addr(idx), first, n, out, at)
          : f.xxh3At(addr(data), ps, addr(idx), first, n, out, at, XXH3_SECRET, XXH3_SECRET.length),
    };
    return selfCheck(native) ? native : undefined;
  } catch {
    return undefined;
  }
}

/** The native library at path, or undefined when it is turned off (PV_NATIVE_HASH=0), missing or does not load. */
export function openNativeLib(path: string): ReturnType<typeof koffi.load> | undefined {
  if (process.env['PV_NATIVE_HASH'] === '0' || !existsSync(path)) return undefined;
  try {
    return koffi.load(path);
  } catch {
    return undefined;
  }
}

function selfCheck(native: NativePageHash): boolean {
  const ps = 4096;
  const probe = Buffer.alloc(3 * ps, 0x5a);
  probe.write('pagevault', ps);
  // Three pages: a pair and one alone (SHA-NI hashes two at a time), by both entry points.
  const want = Buffer.concat([0, 1, 2].map((p) => hash('sha256', probe.subarray(p * ps, (p + 1) * ps), 'buffer') as unknown as Buffer));
  const sha = Buffer.alloc(96);
  native.pages('sha256', probe, 0, 3, ps, sha, 0);
  if (!sha.equals(want)) return false;
  const shaAt = Buffer.alloc(96);
  native.at('sha256', probe, ps, Int32Array.of(2, 0, 1), 0, 3, shaAt, 0);
  if (!shaAt.equals(Buffer.concat([want.subarray(64), want.subarray(0, 64)]))) return false;
  // Pages 0 and 2 are equal, page 1 differs from them by one write.
  const x = Buffer.alloc(48);
  native.pages('xxh3-128', probe, 0, 3, ps, x, 0);
  const viaIdx = Buffer.alloc(32);
  native.at('xxh3-128', probe, ps, Int32Array.of(2, 1), 0, 2, viaIdx, 0);
  const [a, b, c] = [x.subarray(0, 16), x.subarray(16, 32), x.subarray(32, 48)];
  return a.equals(c) && !a.equals(b) && viaIdx.equals(Buffer.concat([c, b]));
}
