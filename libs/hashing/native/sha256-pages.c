/*
 * SHA-256 of many pages in one call, for PageHasher. The hashing is OpenSSL's (SHA-NI where the CPU has
 * it); this file only loops, so that JavaScript pays one FFI call per batch instead of node:crypto's
 * ~2.7 µs of per-call overhead per 4 KiB page (EVP fetch, a result Buffer). The OpenSSL symbols are not
 * linked here: they resolve at load time against the ones the node executable exports (or a libcrypto
 * already loaded), so building needs a C compiler and nothing else. The loader checks the result
 * against node:crypto once before using it.
 */
#include <stddef.h>
#include <stdint.h>

/* OpenSSL's SHA256_CTX is 112 bytes; an opaque, larger, aligned block keeps this file layout-agnostic. */
typedef union { unsigned char bytes[256]; uint64_t align; } sha256_ctx;
int SHA256_Init(sha256_ctx *c);
int SHA256_Update(sha256_ctx *c, const void *data, size_t len);
int SHA256_Final(unsigned char *md, sha256_ctx *c);

static void one(const uint8_t *page, uint32_t ps, uint8_t *md) {
  sha256_ctx c;
  SHA256_Init(&c);
  SHA256_Update(&c, page, ps);
  SHA256_Final(md, &c);
}

/* Pages first .. first+n-1 of data (back to back, ps bytes each) into out[32 * (at + k)]. */
void pv_sha256_pages(const uint8_t *data, uint32_t first, uint32_t n, uint32_t ps, uint8_t *out, uint32_t at) {
  for (uint32_t k = 0; k < n; k++) one(data + (size_t)(first + k) * ps, ps, out + (size_t)(at + k) * 32);
}

/* Pages idx[first .. first+n-1] of data into out[32 * (at + k)]. */
void pv_sha256_at(const uint8_t *data, uint32_t ps, const int32_t *idx, uint32_t first, uint32_t n, uint8_t *out, uint32_t at) {
  for (uint32_t k = 0; k < n; k++) one(data + (size_t)idx[first + k] * ps, ps, out + (size_t)(at + k) * 32);
}
