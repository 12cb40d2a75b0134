"""Loop batching on and off, alternated in one process: GET from N asyncio
tasks on one iokernel client, with ``iokernel.configure(loop_batching=...)``
switched between measurements. Per mode: median ops/s, CPU per op of the
event-loop thread and of the kernel thread (schedstat), voluntary context
switches per op (each one a sleep, so a later wake-up) of both threads and
of redis-server, the loop thread's time runnable but waiting for a CPU
(schedstat), and requests per write (``stats()["writes"]``). With
``--floor`` the eventfd floor (bench/floor.py: no I/O, a helper thread
resolving the futures) is alternated in too and split the same way, so the
gap above it can be read thread by thread.

    python bench/loop_batching.py [--tasks 50] [--ops 30000] [--reps 9] [--floor]

Starts its own redis-server (tests/servers) unless IOKERNEL_BENCH_REDIS_URL
is set. Not a test: nothing is asserted. Alternating in one process (same
connection, same server) takes out most of what changes between runs on a
shared machine; `bench/run.py --ab-loop-batching` gives the interleaved,
peer-side view.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from floor import FloorKernel

import iokernel
from iokernel import redis
from tests.servers import RedisServer

MODES = {"on": True, "off": False}


def thread_stats(pid: int) -> dict[str, tuple[int, int, int]]:
    """Per thread name: (voluntary context switches, run time ns, time
    runnable but waiting for a CPU ns)."""
    out: dict[str, tuple[int, int, int]] = {}
    for t in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (t / "comm").read_text().strip()
            vol = next(int(line.split()[1]) for line in (t / "status").read_text().splitlines()
                       if line.startswith("voluntary_ctxt_switches"))
            run_ns, wait_ns = map(int, (t / "schedstat").read_text().split()[:2])
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
        v, r, w = out.get(name, (0, 0, 0))
        out[name] = (v + vol, r + run_ns, w + wait_ns)
    return out


class _FloorClient:
    """The eventfd floor behind the client shape measure() uses."""

    def __init__(self) -> None:
        self.kernel = FloorKernel(asyncio.get_running_loop(), "eventfd")
        self.get = self.kernel.get

    def stats(self) -> dict[str, int]:
        return {"requests": 0, "writes": 0}


async def measure(c: Any, tasks: int, ops: int, server_pid: int | None) -> dict[str, float]:
    get = c.get

    async def worker(n: int) -> None:
        for _ in range(n):
            await get("lb:key")

    me = os.getpid()
    s0, srv0, w0 = thread_stats(me), thread_stats(server_pid) if server_pid else {}, c.stats()
    t0 = time.perf_counter()
    await asyncio.gather(*(worker(ops // tasks) for _ in range(tasks)))
    dt = time.perf_counter() - t0
    s1, srv1, w1 = thread_stats(me), thread_stats(server_pid) if server_pid else {}, c.stats()
    n = ops // tasks * tasks

    def per_op(a: dict[str, tuple[int, int, int]], b: dict[str, tuple[int, int, int]],
               name: str, i: int, scale: float) -> float:
        return (b.get(name, (0, 0, 0))[i] - a.get(name, (0, 0, 0))[i]) / n / scale

    loop_thread = next(iter(s1)) if s1 else ""  # the main thread comes first
    return {
        "ops": n / dt,
        "wall_us": dt / n * 1e6,
        "loop_cpu_us": per_op(s0, s1, loop_thread, 1, 1e3),
        "loop_wait_us": per_op(s0, s1, loop_thread, 2, 1e3),
        "kernel_cpu_us": per_op(s0, s1, "iokernel", 1, 1e3) + per_op(s0, s1, "floor-kernel", 1, 1e3),
        "loop_sleeps": per_op(s0, s1, loop_thread, 0, 1),
        "kernel_sleeps": per_op(s0, s1, "iokernel", 0, 1) + per_op(s0, s1, "floor-kernel", 0, 1),
        "server_sleeps": sum(per_op(srv0, srv1, k, 0, 1) for k in srv1),
        "per_write": (w1["requests"] - w0["requests"]) / max(1, w1["writes"] - w0["writes"]),
    }


async def run(url: str, args: argparse.Namespace, server_pid: int | None) -> None:
    c = redis.AsyncClient(url, health_check_interval=None)
    await c.set("lb:key", "v" * 16)
    floor = _FloorClient() if args.floor else None
    order = list(MODES) + (["floor"] if floor else [])
    got: dict[str, list[dict[str, float]]] = {m: [] for m in order}
    for rep in range(args.reps):
        for m in order[rep % len(order):] + order[:rep % len(order)]:
            target: Any = floor if m == "floor" else c
            if m in MODES:
                iokernel.configure(loop_batching=MODES[m])
            await measure(target, args.tasks, min(args.ops, 5000), server_pid)  # settle
            got[m].append(await measure(target, args.tasks, args.ops, server_pid))
    iokernel.configure(loop_batching=True)
    await c.close()
    if floor:
        floor.kernel.close()
    print(f"GET, {args.tasks} asyncio tasks, {args.ops} ops x {args.reps} reps per mode, "
          f"alternated; load {os.getloadavg()[0]:.2f}")
    print("| loop_batching | ops/s (median) | wall µs/op | loop thread: running / waiting "
          "for a CPU, µs/op | kernel CPU µs/op | sleeps/op loop / kernel / redis | "
          "requests per write |")
    print("|---|--:|--:|:-:|--:|:-:|--:|")
    for m, rows in got.items():
        med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
        print(f"| {m} | {med['ops'] / 1e3:.1f} k | {med['wall_us']:.2f} | "
              f"{med['loop_cpu_us']:.2f} / {med['loop_wait_us']:.2f} | "
              f"{med['kernel_cpu_us']:.2f} | {med['loop_sleeps']:.3f} / "
              f"{med['kernel_sleeps']:.3f} / {med['server_sleeps']:.3f} | {med['per_write']:.1f} |")
    ratios = [a["ops"] / b["ops"] for a, b in zip(got["on"], got["off"])]
    print(f"on / off per repetition: {', '.join(f'{r:.2f}' for r in ratios)}; "
          f"median {statistics.median(ratios):.2f}")
    if floor:
        gaps = [a["wall_us"] - b["wall_us"] for a, b in zip(got["on"], got["floor"])]
        print(f"iokernel (on) - floor, wall µs/op per repetition: "
              f"{', '.join(f'{g:.2f}' for g in gaps)}; median {statistics.median(gaps):.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--ops", type=int, default=30_000)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--floor", action="store_true",
                    help="alternate the eventfd floor in too (same split)")
    args = ap.parse_args()
    url = os.environ.get("IOKERNEL_BENCH_REDIS_URL")
    if url:
        asyncio.run(run(url, args, None))
        return
    with RedisServer() as srv:
        asyncio.run(run(srv.url(), args, srv.pid))


if __name__ == "__main__":
    main()
