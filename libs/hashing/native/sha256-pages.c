/*
 * SHA-256 of many pages in one call, for PageHasher, so that JavaScript pays one FFI call per batch
 * instead of node:crypto's ~2.7 µs of per-call overhead per 4 KiB page (EVP fetch, a result Buffer).
 *
 * Two ways, chosen once per process:
 * - SHA-NI, two pages at a time (x86-64 with the SHA extensions, page size a multiple of 64). One SHA-256
 *   is a chain of sha256rnds2 instructions, each waiting for the last: on AMD Zen its latency is twice
 *   its throughput, so a second independent page interleaved with the first runs in the gaps (~1.9×
 *   OpenSSL's SHA-NI code on one page here; three or four pages run out of xmm registers and are
 *   slower). The last block of a page is the same for every page of a size (0x80, zeros, the length),
 *   so its message schedule is computed once per call. The same idea as the Linux kernel's
 *   sha256_ni_finup2x and Intel's isa-l_crypto multi-buffer SHA-256; neither is a library Node can load.
 * - OpenSSL's SHA256 (its own SHA-NI or AVX2 code), a page at a time: anywhere else, or with
 *   PV_SHA256_NI=0. The OpenSSL symbols are not linked here: they resolve at load time against the ones
 *   the node executable exports (or a libcrypto already loaded), so building needs a C compiler only.
 *
 * The loader checks the result against node:crypto before using it; the tests check every page count
 * and offset against it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* OpenSSL's SHA256_CTX is 112 bytes; an opaque, larger, aligned block keeps this file layout-agnostic. */
typedef union { unsigned char bytes[256]; uint64_t align; } sha256_ctx;
int SHA256_Init(sha256_ctx *c);
int SHA256_Update(sha256_ctx *c, const void *data, size_t len);
int SHA256_Final(unsigned char *md, sha256_ctx *c);

static void openssl_one(const uint8_t *page, uint32_t ps, uint8_t *md) {
  sha256_ctx c;
  SHA256_Init(&c);
  SHA256_Update(&c, page, ps);
  SHA256_Final(md, &c);
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_SHA_NI_CODE 1
#define SHA_NI __attribute__((target("sha,sse4.1,ssse3")))

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

/* W[t] + K[t] of the padding block that ends a message of `bytes` bytes, a multiple of 64. */
static void padding_schedule(uint64_t bytes, uint32_t wk[64]) {
  uint32_t w[64] = {0x80000000u};
  w[14] = (uint32_t)((bytes * 8) >> 32);
  w[15] = (uint32_t)(bytes * 8);
  for (int t = 16; t < 64; t++) {
    uint32_t s0 = ror(w[t - 15], 7) ^ ror(w[t - 15], 18) ^ (w[t - 15] >> 3);
    uint32_t s1 = ror(w[t - 2], 17) ^ ror(w[t - 2], 19) ^ (w[t - 2] >> 10);
    w[t] = w[t - 16] + s0 + w[t - 7] + s1;
  }
  for (int t = 0; t < 64; t++) wk[t] = w[t] + K[t];
}

/* Four rounds: the state as ABEF/CDGH (the instruction's order), wk = W + K of those rounds. */
#define ROUNDS4(s0, s1, wk)                           \
  do {                                                \
    __m128i k_ = (wk);                                \
    s1 = _mm_sha256rnds2_epu32(s1, s0, k_);           \
    s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(k_, 0x0E)); \
  } while (0)

/*
 * SHA-256 of `lanes` (1 or 2, a constant after inlining) messages of len bytes each (a multiple of 64)
 * side by side, ending with the padding block whose schedule is wk.
 */
SHA_NI static inline __attribute__((always_inline)) void sha_ni_lanes(int lanes, const uint8_t *const p[2], size_t len, const uint32_t wk[64],
                                                                     uint8_t *const md[2]) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i h0[2], h1[2], s0[2], s1[2], m[2][4];
  for (int l = 0; l < lanes; l++) {
    h0[l] = _mm_set_epi32(0x6a09e667, 0xbb67ae85, 0x510e527f, 0x9b05688c); /* ABEF */
    h1[l] = _mm_set_epi32(0x3c6ef372, 0xa54ff53a, 0x1f83d9ab, 0x5be0cd19); /* CDGH */
  }
  for (size_t off = 0; off < len; off += 64) {
    for (int l = 0; l < lanes; l++) s0[l] = h0[l], s1[l] = h1[l];
#pragma GCC unroll 16
    for (int g = 0; g < 16; g++) {
      const __m128i k = _mm_loadu_si128((const __m128i *)&K[4 * g]);
#pragma GCC unroll 2
      for (int l = 0; l < lanes; l++) {
        if (g < 4) {
          m[l][g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p[l] + off + 16 * g)), bswap);
        } else { /* W[i] = W[i-16] + σ0(W[i-15]) + W[i-7] + σ1(W[i-2]), four at a time */
          __m128i t = _mm_sha256msg1_epu32(m[l][g & 3], m[l][(g - 3) & 3]);
          t = _mm_add_epi32(t, _mm_alignr_epi8(m[l][(g - 1) & 3], m[l][(g - 2) & 3], 4));
          m[l][g & 3] = _mm_sha256msg2_epu32(t, m[l][(g - 1) & 3]);
        }
        ROUNDS4(s0[l], s1[l], _mm_add_epi32(m[l][g & 3], k));
      }
    }
    for (int l = 0; l < lanes; l++) h0[l] = _mm_add_epi32(h0[l], s0[l]), h1[l] = _mm_add_epi32(h1[l], s1[l]);
  }
  for (int l = 0; l < lanes; l++) s0[l] = h0[l], s1[l] = h1[l];
#pragma GCC unroll 16
  for (int g = 0; g < 16; g++) {
    const __m128i k = _mm_loadu_si128((const __m128i *)&wk[4 * g]);
#pragma GCC unroll 2
    for (int l = 0; l < lanes; l++) ROUNDS4(s0[l], s1[l], k);
  }
  for (int l = 0; l < lanes; l++) {
    __m128i feba = _mm_shuffle_epi32(_mm_add_epi32(h0[l], s0[l]), 0x1B);
    __m128i dchg = _mm_shuffle_epi32(_mm_add_epi32(h1[l], s1[l]), 0xB1);
    _mm_storeu_si128((__m128i *)md[l], _mm_shuffle_epi8(_mm_blend_epi16(feba, dchg, 0xF0), bswap));       /* ABCD */
    _mm_storeu_si128((__m128i *)(md[l] + 16), _mm_shuffle_epi8(_mm_alignr_epi8(dchg, feba, 8), bswap)); /* EFGH */
  }
}

SHA_NI static void sha_ni_two(const uint8_t *a, const uint8_t *b, size_t len, const uint32_t wk[64], uint8_t *ma, uint8_t *mb) {
  const uint8_t *const p[2] = {a, b};
  uint8_t *const md[2] = {ma, mb};
  sha_ni_lanes(2, p, len, wk, md);
}

SHA_NI static void sha_ni_one(const uint8_t *a, size_t len, const uint32_t wk[64], uint8_t *ma) {
  const uint8_t *const p[2] = {a, a};
  uint8_t *const md[2] = {ma, ma};
  sha_ni_lanes(1, p, len, wk, md);
}

static int cpu_has_sha_ni(void) {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSE4_1) || !(c & bit_SSSE3)) return 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
  return (b & bit_SHA) != 0;
}
#endif

/* 2: SHA-NI two pages at a time, 1: OpenSSL a page at a time. Decided once (cpuid traps in some VMs). */
static int impl = 0;

int pv_sha256_impl(void) {
  int i = __atomic_load_n(&impl, __ATOMIC_RELAXED);
  if (i) return i;
  i = 1;
#ifdef HAVE_SHA_NI_CODE
  const char *env = getenv("PV_SHA256_NI");
  if (!(env && env[0] == '0') && cpu_has_sha_ni()) i = 2;
#endif
  __atomic_store_n(&impl, i, __ATOMIC_RELAXED);
  return i;
}

/*
 * The k-th of n pages is data + ps * (idx ? idx[first + k] : first + k); its hash goes to out[32 * (at + k)].
 */
static void sha256_pages(const uint8_t *data, uint32_t ps, const int32_t *idx, uint32_t first, uint32_t n, uint8_t *out, uint32_t at) {
#define PAGE(k) (data + (size_t)(idx ? (uint32_t)idx[first + (k)] : first + (k)) * ps)
#define DIGEST(k) (out + (size_t)(at + (k)) * 32)
  uint32_t k = 0;
#ifdef HAVE_SHA_NI_CODE
  if (ps % 64 == 0 && pv_sha256_impl() == 2) {
    uint32_t wk[64];
    padding_schedule(ps, wk);
    for (; k + 1 < n; k += 2) sha_ni_two(PAGE(k), PAGE(k + 1), ps, wk, DIGEST(k), DIGEST(k + 1));
    if (k < n) sha_ni_one(PAGE(k), ps, wk, DIGEST(k));
    return;
  }
#endif
  for (; k < n; k++) openssl_one(PAGE(k), ps, DIGEST(k));
#undef PAGE
#undef DIGEST
}

/* Pages first .. first+n-1 of data (back to back, ps bytes each) into out[32 * (at + k)]. */
void pv_sha256_pages(const uint8_t *data, uint32_t first, uint32_t n, uint32_t ps, uint8_t *out, uint32_t at) {
  sha256_pages(data, ps, NULL, first, n, out, at);
}

/* Pages idx[first .. first+n-1] of data into out[32 * (at + k)]. */
void pv_sha256_at(const uint8_t *data, uint32_t ps, const int32_t *idx, uint32_t first, uint32_t n, uint8_t *out, uint32_t at) {
  sha256_pages(data, ps, idx, first, n, out, at);
}
