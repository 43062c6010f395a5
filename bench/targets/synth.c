// The synthetic benchmark target: one region of <MiB> in four quarters, each page touched.
//   zeros      written with zeros (present, all-zero pages)
//   constant   one random page repeated
//   block      one random 1 MiB block repeated
//   fresh      random pages, none equal to another
// Page-exact optimum to store: 1 page + 256 pages + the fresh quarter (≈ 257 MiB per GiB).
//
//   synth <MiB> [seed]   prints one JSON line, then reads commands on stdin:
//     m <permille>       rewrites that share of the fresh quarter's pages, answers "mutated <pages>"
//                        (which pages, and their new bytes, differ between processes of the same seed)
//   EOF on stdin ends it.
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t rng_state;

static uint64_t rng(void) { // xorshift64*: fast, and good enough for incompressible pages
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}

static void fill_random(void *p, size_t bytes) {
  uint64_t *w = p;
  for (size_t i = 0; i < bytes / 8; i++) w[i] = rng();
}

int main(int argc, char **argv) {
  if (argc < 2) { fprintf(stderr, "usage: synth <MiB> [seed]\n"); return 2; }
  long ps = sysconf(_SC_PAGESIZE);
  size_t bytes = (size_t)atol(argv[1]) << 20;
  rng_state = argc > 2 ? strtoull(argv[2], NULL, 10) | 1 : 0x9E3779B97F4A7C15ull;
  size_t q = bytes / 4;
  if (q < (1u << 20) || q % (1u << 20)) { fprintf(stderr, "synth: MiB must be a multiple of 4, at least 4\n"); return 2; }
  char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) { perror("mmap"); return 1; }
  madvise(p, bytes, MADV_NOHUGEPAGE); // 4 KiB pages everywhere, whatever the THP setting
  char *zeros = p, *constant = p + q, *block = p + 2 * q, *fresh = p + 3 * q;
  memset(zeros, 0, q);
  fill_random(constant, ps);
  for (size_t o = ps; o < q; o += ps) memcpy(constant + o, constant, ps);
  fill_random(block, 1u << 20);
  for (size_t o = 1u << 20; o < q; o += 1u << 20) memcpy(block + o, block, 1u << 20);
  fill_random(fresh, q);
  printf("{\"pid\":%d,\"pageSize\":%ld,\"addr\":\"%p\",\"bytes\":%zu}\n", getpid(), ps, (void *)p, bytes);
  fflush(stdout);
  rng_state = (rng_state ^ (uint64_t)getpid() * 0x9E3779B97F4A7C15ull) | 1; // processes of one seed hold the same data, then diverge
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    long permille;
    if (sscanf(line, "m %ld", &permille) != 1) continue;
    size_t changed = 0;
    for (size_t o = 0; o < q; o += ps) {
      if ((long)(rng() % 1000) >= permille) continue;
      fill_random(fresh + o, ps);
      changed++;
    }
    printf("mutated %zu\n", changed);
    fflush(stdout);
  }
  return 0;
}
