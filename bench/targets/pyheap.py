# A CPython process holding a large heap of small objects, the shape of a cache or an in-memory index:
#   python3 pyheap.py <MiB> <seed>
# Builds dict records (strings, ints, floats, lists, nested dicts) until its resident set has grown by
# <MiB>, prints one JSON line when ready, then idles until stdin reaches EOF. The layout of the heap is
# CPython's (pymalloc arenas, object headers, reference counts), not ours.
import json
import os
import random
import sys

mib, seed = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(seed)
alpha = "abcdefghijklmnopqrstuvwxyz0123456789"


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def word(lo, hi):
    return "".join(rnd.choice(alpha) for _ in range(rnd.randrange(lo, hi)))


start = rss()
records = {}
i = 0
while rss() - start < mib * 2**20:
    for _ in range(1024):
        records[i] = {
            "id": i,
            "name": word(6, 14),
            "email": word(4, 10) + "@" + word(4, 8) + ".example",
            "score": rnd.random() * 1000,
            "visits": rnd.randrange(1_000_000),
            "tags": [word(3, 8), word(3, 8), word(3, 8)],
            "address": {"street": word(8, 20), "city": word(5, 12), "zip": rnd.randrange(99999)},
            "note": word(40, 160),
        }
        i += 1
sys.stdout.write(json.dumps({"pid": os.getpid(), "records": len(records), "rss": rss()}) + "\n")
sys.stdout.flush()
sys.stdin.read()
