"""Where the Python-side time goes when 50 asyncio tasks share one iokernel client.

Runs the bench/run.py scenario "GET, 50 asyncio tasks" for iokernel only
(default: 50 tasks, 100,000 GETs, the default asyncio loop) once without a
profiler (the reference ops/s) and once under cProfile, and prints the top
functions by own time (tottime). cProfile sees the event-loop thread only,
which is what this is for: the kernel thread never runs Python code. Native
methods show up as ``{method 'submit' of 'iokernel._native.RedisService'
objects}`` (submission) and ``{method 'drain' of 'iokernel._native.Completer'
objects}`` (delivery of a batch of replies, including set_result).

    python bench/profile_asyncio.py [--tasks 50] [--ops 100000] [--loop uvloop]
                                    [--top 25] [--sort tottime|cumulative] [--timer cpu]

Native profile of the kernel thread (perf with software events works on this
machine; hardware counters such as `instructions` are not available in the
VM). The extension is built with debuginfo=1, so Rust symbols resolve:

    perf record -e cpu-clock -F 4000 -g --call-graph dwarf -o /tmp/iok.perf -- \\
        .venv/bin/python bench/profile_asyncio.py --no-profile --ops 300000
    perf report -i /tmp/iok.perf --comms iokernel --no-children --stdio | head -60
    perf report -i /tmp/iok.perf --comms python --no-children --stdio | head -60

(`--comms iokernel` keeps the kernel thread's samples, `--comms python` the
event-loop thread's; `perf report --sort comm` shows how CPU splits between
them and redis-server is not included since it is another process.
--call-graph dwarf gives readable Rust stacks at the cost of large files;
use `-g` alone for frame-pointer stacks.)

Uses $IOKERNEL_BENCH_REDIS_URL if set, otherwise starts its own redis-server.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

from cases import KEY, VALUE, loop_factory, raw_command, split
from run import redis_server


async def scenario(url: str, tasks: int, ops: int, prof: cProfile.Profile | None) -> float:
    from iokernel import redis

    c = redis.AsyncClient(url, client_name="bench-profile")
    get = c.get

    async def worker(n: int) -> None:
        for _ in range(n):
            await get(KEY)

    await asyncio.gather(*(worker(20) for _ in range(tasks)))  # warm-up
    gc.collect()
    if prof is not None:
        prof.enable()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in split(ops, tasks)))
    dt = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
    stats = c.stats()
    await c.close()
    print(f"  {ops / dt:,.0f} ops/s ({dt * 1e6 / ops:.2f} µs/op wall), "
          f"connections={stats['connections']}", file=sys.stderr)
    return dt


def run(loop: str, url: str, tasks: int, ops: int, prof: cProfile.Profile | None) -> float:
    ev = loop_factory(loop)()
    try:
        return ev.run_until_complete(scenario(url, tasks, ops, prof))
    finally:
        ev.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--sort", default="tottime", choices=("tottime", "cumulative", "ncalls"))
    ap.add_argument("--timer", default="wall", choices=("wall", "cpu"),
                    help="cpu: time.thread_time, so time the loop thread spends preempted "
                    "(e.g. right after waking the kernel thread on a busy 2-core machine) is "
                    "not charged to the function that was running")
    ap.add_argument("--no-profile", action="store_true",
                    help="only run the scenario (for perf record)")
    args = ap.parse_args()

    with redis_server() as (url, how):
        raw_command(url, "SET", KEY, VALUE.decode())
        print(f"# {args.tasks} tasks, {args.ops:,} GETs, loop {args.loop}; server {url} "
              f"({how})", file=sys.stderr)
        print("without profiler:", file=sys.stderr)
        run(args.loop, url, args.tasks, args.ops, None)
        if args.no_profile:
            return 0
        prof = (cProfile.Profile(time.thread_time) if args.timer == "cpu"
                else cProfile.Profile())
        print("under cProfile:", file=sys.stderr)
        dt = run(args.loop, url, args.tasks, args.ops, prof)

    buf = io.StringIO()
    st = pstats.Stats(prof, stream=buf)
    st.sort_stats(args.sort).print_stats(args.top)
    text = buf.getvalue()
    # pstats prints absolute paths; shorten them for reading.
    text = text.replace(str(HERE.parent) + "/", "").replace(sys.prefix + "/", "")
    print(text)
    total = sum(v[2] for v in st.stats.values())  # type: ignore[attr-defined]
    print(f"profiled tottime {total:.3f} s over {args.ops:,} ops = "
          f"{total * 1e6 / args.ops:.2f} µs/op (wall under the profiler {dt:.3f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
