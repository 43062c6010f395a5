/*
 * CRC32C (Castagnoli; iSCSI, ext4, Kafka record batches, pagevault frames) with the SSE4.2 crc32
 * instruction on three streams at once. The instruction takes one 8-byte step a cycle but has a latency
 * of three, so a single dependent chain (what @node-rs/crc32 measured here: ~4 GB/s) leaves two thirds of
 * it idle; three chains over three adjacent blocks, joined by shifting a block's CRC over the zeros that
 * follow it with precomputed GF(2) tables, reach ~15-18 GB/s on this machine. The method and its tables
 * are Mark Adler's (crc32c.c, zlib license, "crc32c_hw"), written out again here with intrinsics.
 *
 * pv_crc32c_supported() says whether this CPU has SSE4.2 (always 0 off x86-64): pv_crc32c must not be
 * called otherwise, and the caller falls back to another implementation.
 */
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <nmmintrin.h>

#define POLY 0x82f63b78u /* CRC-32C, reflected */
#define LONG 8192
#define SHORT 256

static uint32_t shift_long[4][256], shift_short[4][256];

static uint32_t gf2_times(const uint32_t *mat, uint32_t vec) {
  uint32_t sum = 0;
  for (; vec; vec >>= 1, mat++)
    if (vec & 1) sum ^= *mat;
  return sum;
}

static void gf2_square(uint32_t *sq, const uint32_t *mat) {
  for (int n = 0; n < 32; n++) sq[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends len zero bytes to a CRC (len a power of two), by repeated squaring. */
static void zeros_op(uint32_t *even, size_t len) {
  uint32_t odd[32], row = 1;
  odd[0] = POLY; /* one zero bit */
  for (int n = 1; n < 32; n++, row <<= 1) odd[n] = row;
  gf2_square(even, odd); /* two zero bits */
  gf2_square(odd, even); /* four */
  do {                   /* one byte, two, four... */
    gf2_square(even, odd);
    if ((len >>= 1) == 0) return;
    gf2_square(odd, even);
  } while (len >>= 1);
  for (int n = 0; n < 32; n++) even[n] = odd[n];
}

/* That operator as four byte-indexed tables. */
static void zeros_tables(uint32_t t[4][256], size_t len) {
  uint32_t op[32];
  zeros_op(op, len);
  for (uint32_t n = 0; n < 256; n++)
    for (int b = 0; b < 4; b++) t[b][n] = gf2_times(op, n << (8 * b));
}

static inline uint32_t shift(uint32_t t[4][256], uint32_t crc) {
  return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^ t[3][crc >> 24];
}

__attribute__((constructor)) static void init(void) {
  zeros_tables(shift_long, LONG);
  zeros_tables(shift_short, SHORT);
}

int pv_crc32c_supported(void) { return __builtin_cpu_supports("sse4.2"); }

/* The CRC32C of p[0, len) continuing from crc (0 to start), as zlib-style crc32 functions chain. */
__attribute__((target("sse4.2"))) uint32_t pv_crc32c(uint32_t crc, const uint8_t *p, size_t len) {
  uint64_t c0 = crc ^ 0xffffffffu;
  for (; len && ((uintptr_t)p & 7); len--) c0 = _mm_crc32_u8((uint32_t)c0, *p++);
#define THREE_WAY(BLOCK, TABLE)                                                \
  while (len >= 3 * (BLOCK)) {                                                 \
    uint64_t c1 = 0, c2 = 0;                                                   \
    for (const uint8_t *end = p + (BLOCK); p < end; p += 8) {                  \
      c0 = _mm_crc32_u64(c0, *(const uint64_t *)p);                            \
      c1 = _mm_crc32_u64(c1, *(const uint64_t *)(p + (BLOCK)));                \
      c2 = _mm_crc32_u64(c2, *(const uint64_t *)(p + 2 * (BLOCK)));            \
    }                                                                          \
    c0 = shift(TABLE, (uint32_t)c0) ^ c1;                                      \
    c0 = shift(TABLE, (uint32_t)c0) ^ c2;                                      \
    p += 2 * (BLOCK);                                                          \
    len -= 3 * (BLOCK);                                                        \
  }
  THREE_WAY(LONG, shift_long)
  THREE_WAY(SHORT, shift_short)
#undef THREE_WAY
  for (; len >= 8; len -= 8, p += 8) c0 = _mm_crc32_u64(c0, *(const uint64_t *)p);
  for (; len; len--) c0 = _mm_crc32_u8((uint32_t)c0, *p++);
  return (uint32_t)c0 ^ 0xffffffffu;
}

#else

int pv_crc32c_supported(void) { return 0; }
uint32_t pv_crc32c(uint32_t crc, const uint8_t *p, size_t len) {
  (void)p;
  (void)len;
  return crc;
}

#endif

/* A frame's CRC as pagevault's format defines it: header bytes [0, crcOffset), then the body from bodyAt. */
uint32_t pv_frame_crc32c(const uint8_t *frame, size_t len, size_t crcOffset, size_t bodyAt) {
  return pv_crc32c(pv_crc32c(0, frame, crcOffset), frame + bodyAt, len - bodyAt);
}
