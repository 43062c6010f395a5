/*
 * XXH3-128 of many pages in one call, for PageHasher: the agent's change detection (is this page the
 * same as at the last snapshot?), never a stored page's identity, which stays SHA-256. The hashing is
 * xxHash's (vendor/xxhash, v0.8.2, BSD-2-Clause), inlined; ~7 GB/s a core here on SSE2 alone, against
 * ~1.2 GB/s for SHA-256 with SHA-NI. It is keyed by a secret of the caller's (random per process) so a
 * target cannot choose page contents that collide with what it held before.
 */
#define XXH_INLINE_ALL
#include <stdint.h>
#include "vendor/xxhash/xxhash.h"

static void one(const uint8_t *page, uint32_t ps, const uint8_t *secret, uint32_t secretLen, uint8_t *out) {
  XXH128_canonicalFromHash((XXH128_canonical_t *)out, XXH3_128bits_withSecret(page, ps, secret, secretLen));
}

/* Pages first .. first+n-1 of data (back to back, ps bytes each) into out[16 * (at + k)]. */
void pv_xxh3_pages(const uint8_t *data, uint32_t first, uint32_t n, uint32_t ps, uint8_t *out, uint32_t at,
                   const uint8_t *secret, uint32_t secretLen) {
  for (uint32_t k = 0; k < n; k++) one(data + (size_t)(first + k) * ps, ps, secret, secretLen, out + (size_t)(at + k) * 16);
}

/* Pages idx[first .. first+n-1] of data into out[16 * (at + k)]. */
void pv_xxh3_at(const uint8_t *data, uint32_t ps, const int32_t *idx, uint32_t first, uint32_t n, uint8_t *out, uint32_t at,
                const uint8_t *secret, uint32_t secretLen) {
  for (uint32_t k = 0; k < n; k++) one(data + (size_t)idx[first + k] * ps, ps, secret, secretLen, out + (size_t)(at + k) * 16);
}
