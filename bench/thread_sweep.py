"""Blocking GETs against the number of threads: iokernel (one shared
client), redis-py (a pool of min(threads, 50)) and the blocking floor (the
same calls with no I/O: `_native._floor_call`, a helper thread answering
each at once; measured spinning first when few callers wait, as
iokernel's do, and never spinning), interleaved, each measurement in a
fresh process.

It shows where the thread count itself starts to cost: the floor is what
the GIL hand-offs and the threads' wake-ups allow with nothing else to do,
so where iokernel meets the floor, more speed has to come from fewer
hand-offs, not from the I/O path.

    python bench/thread_sweep.py [--threads 1,2,5,10,20,50,100] [--reps 5]
                                 [--ops 12000] [--plot docs/img/bench-threads.png]

Starts its own redis-server (tests/servers) unless IOKERNEL_BENCH_REDIS_URL
is set; writes the table to bench/results/thread_sweep.md too. Not a test:
nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import harness
import measuring
from cases import KEY, VALUE, measure_threads, raw_command

CLIENTS = ("floor-blocking", "floor-nospin", "iokernel", "redis-py")


def sweep(url: str, counts: list[int], reps: int, ops: int) -> dict[tuple[str, int], list[float]]:
    """ops/s per (client, threads), every repetition; round-robin over all."""
    raw_command(url, "SET", KEY, VALUE.decode())
    got: dict[tuple[str, int], list[float]] = {}
    with measuring.ClientProcesses(fresh=True) as workers:
        for rep in range(reps):
            for n in counts:
                first = rep % len(CLIENTS)
                clients = CLIENTS[first:] + CLIENTS[:first]  # rotate the order
                for client in clients:
                    k = max(n, ops // n * n)  # the same ops for every client
                    m = workers.call(client, measure_threads, client, "get", n, k, url,
                                     f"sweep-{client}-{os.getpid()}-{rep}-{n}")
                    got.setdefault((client, n), []).append(m.ops_per_s)
                    print(f"  rep {rep + 1} {n:4d} threads {client:15s} "
                          f"{m.ops_per_s / 1000:8.1f} k ops/s", file=sys.stderr, flush=True)
    return got


def report(got: dict[tuple[str, int], list[float]], counts: list[int]) -> list[str]:
    med = {key: statistics.median(v) for key, v in got.items()}
    out = [
        "| threads | floor (no I/O) | floor, never spinning | iokernel | redis-py "
        "| iokernel / floor | iokernel / floor never spinning | iokernel / redis-py "
        "| floor never spinning / redis-py |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for n in counts:
        f, i, r = med[("floor-blocking", n)], med[("iokernel", n)], med[("redis-py", n)]
        fn = med[("floor-nospin", n)]
        fmt = harness.fmt_ops
        out.append(f"| {n} | {fmt(f)} | {fmt(fn)} | {fmt(i)} | {fmt(r)} "
                   f"| {i / f:.2f} | {i / fn:.2f} | {i / r:.2f}× | {fn / r:.2f}× |")
    return out


def plot(got: dict[tuple[str, int], list[float]], counts: list[int], path: Path,
         title: str) -> None:
    fig, ax = harness.figure([1], (8, 5))  # one panel: one Axes
    styles = {"floor-blocking": ("gray", ".", ":", "floor: no I/O, a helper thread answers"),
              "floor-nospin": ("black", "x", ":", "floor, callers never spinning"),
              "iokernel": ("tab:blue", "o", "-", "iokernel (1 connection)"),
              "redis-py": ("tab:red", "s", "-", "redis-py + hiredis (pool of min(threads, 50))")}
    for client, (color, marker, ls, label) in styles.items():
        ax.plot(counts, [statistics.median(got[(client, n)]) for n in counts], color=color,
                marker=marker, linestyle=ls, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(counts)
    ax.set_xticklabels([str(n) for n in counts])
    ax.set_xlabel("threads, each making blocking GETs")
    ax.set_ylabel("ops/s (median)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    harness.save_figure(fig, path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,2,5,10,20,50,100")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ops", type=int, default=12_000, help="per measurement, every client")
    ap.add_argument("--plot", default=None, help="write the plot here (PNG)")
    args = ap.parse_args()
    counts = [int(x) for x in args.threads.split(",") if x.strip()]
    with harness.server("redis", "IOKERNEL_BENCH_REDIS_URL") as srv:
        got = sweep(srv.url, counts, args.reps, args.ops)
    harness.write_table("thread_sweep", f"python bench/thread_sweep.py --threads {args.threads} "
                        f"--reps {args.reps} --ops {args.ops}", args.reps, report(got, counts))
    if args.plot:
        plot(got, counts, Path(args.plot),
             f"Blocking GETs against threads — {os.cpu_count()} CPUs, median of {args.reps}")
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
