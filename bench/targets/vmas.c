// The many-VMA benchmark target: <count> one-page anonymous VMAs side by side, each page written with its
// own bytes, every other one made read-only so that no two neighbours merge (as an allocator's guard
// pages or a JIT's mprotect'ed pages split a process into thousands of VMAs).
//
//   vmas <count>   prints one JSON line, then waits; EOF on stdin ends it.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: vmas <count>\n");
    return 2;
  }
  long count = atol(argv[1]);
  long ps = sysconf(_SC_PAGESIZE);
  char *base = mmap(NULL, (size_t)count * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (base == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (long i = 0; i < count; i++) memset(base + i * ps, (int)(i % 255) + 1, (size_t)ps);
  for (long i = 0; i < count; i += 2) {
    if (mprotect(base + i * ps, (size_t)ps, PROT_READ) != 0) {
      perror("mprotect");
      return 1;
    }
  }
  printf("{\"pid\":%d,\"vmas\":%ld,\"addr\":\"%p\",\"bytes\":%ld}\n", getpid(), count, (void *)base, count * ps);
  fflush(stdout);
  char buf[64];
  while (fgets(buf, sizeof buf, stdin)) {
  }
  return 0;
}
