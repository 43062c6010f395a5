# A CPython process holding a large heap of small objects, the shape of a cache or an in-memory index:
#   python3 pyheap.py <MiB> <seed>
# Builds dict records (strings, ints, floats, lists, nested dicts) until its resident set has grown by
# <MiB>, prints one JSON line when ready, then idles until stdin reaches EOF, answering one JSON line to
# each command line:
#   churn <pct>  work like a cache in service: every 100 ms of running time, evict the oldest pct/10 %
#                of the records for fresh ones (the old ones are freed), update a quarter as many in
#                place at random and serve four times as many reads as JSON; 0 stops. Counted in
#                running time, so a stopped process catches nothing up.
#   stats        records replaced, updated and read so far, collections per GC generation, RSS
# The layout of the heap is CPython's (pymalloc arenas, object headers, reference counts), not ours.
import gc
import json
import os
import random
import select
import sys
import time

mib, seed = int(sys.argv[1]), int(sys.argv[2])
rnd = random.Random(seed)
alpha = "abcdefghijklmnopqrstuvwxyz0123456789"


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def record(k, r):
    """One record of k from the random stream r (the build and the churn each have their own)."""
    w = lambda lo, hi: "".join(r.choices(alpha, k=r.randrange(lo, hi)))
    return {
        "id": k,
        "name": w(6, 14),
        "email": w(4, 10) + "@" + w(4, 8) + ".example",
        "score": r.random() * 1000,
        "visits": r.randrange(1_000_000),
        "tags": [w(3, 8), w(3, 8), w(3, 8)],
        "address": {"street": w(8, 20), "city": w(5, 12), "zip": r.randrange(99999)},
        "note": w(40, 160),
    }


start = rss()
records = {}
i = 0
while rss() - start < mib * 2**20:
    for _ in range(1024):
        records[i] = record(i, rnd)
        i += 1


def say(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()


say({"pid": os.getpid(), "records": len(records), "rss": rss()})

# Service work on command, from a stream of its own so the records above stay as they were built. One
# thread, as before: commands and churn ticks share a select() loop, which blocks while there is no churn.
crnd = random.Random(seed + 0x5EED)
churn = {"pct": 0.0, "next": 0, "replaced": 0, "updated": 0, "read": 0, "bytes_served": 0}


def churn_tick():
    # A cache in service: evicts its oldest entries for fresh ones (slot by slot, in the order they were
    # built and then replaced), updates a quarter as many at random and serves reads four times as many.
    n = max(1, round(len(records) * churn["pct"] / 1000))
    updates = max(1, round(n / 4))
    for _ in range(n):
        k = churn["next"]
        records[k] = record(k, crnd)
        churn["next"] = (k + 1) % len(records)
    for _ in range(updates):
        r = records[crnd.randrange(len(records))]
        r["visits"] += 1
        r["score"] = crnd.random() * 1000
    for _ in range(4 * n):
        churn["bytes_served"] += len(json.dumps(records[crnd.randrange(len(records))]))
    churn["replaced"] += n
    churn["updated"] += updates
    churn["read"] += 4 * n


def command(line):
    cmd, *args = line.split() or [""]
    if cmd == "churn":
        churn["pct"] = float(args[0]) if args else 0.0
        return {"churn": churn["pct"]}
    if cmd == "stats":
        gens = [g["collections"] for g in gc.get_stats()]
        return {
            "records": len(records), "replaced": churn["replaced"], "updated": churn["updated"], "read": churn["read"],
            "bytes_served": churn["bytes_served"], "gcs": gens, "rss": rss(),
        }
    return {"error": f"unknown command {cmd}"}


pending = b""
next_tick = time.monotonic() + 0.1
while True:
    wait = max(0.0, next_tick - time.monotonic()) if churn["pct"] > 0 else None
    if select.select([0], [], [], wait)[0]:
        data = os.read(0, 65536)
        if not data:
            break
        pending += data
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            say(command(line.decode()))
    if churn["pct"] > 0 and time.monotonic() >= next_tick:
        churn_tick()
        next_tick = time.monotonic() + 0.1
