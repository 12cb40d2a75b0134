"""Stream throughput at 50 asyncio tasks: iokernel against redis-py and
valkey-glide in the same run (issue 15).

Two cases, each client in turn on a fresh redis-server (tests/servers,
loopback), ``--rounds`` interleaved rounds (client order rotated):

* ``XADD``: 50 tasks each append entries of one 16-byte field to one stream
  (``MAXLEN ~ 10000``), as fast as replies come back;
* ``XREADGROUP``: the stream is filled with 50 x ``--per-task`` entries and
  a group created at 0; 50 tasks (50 consumers) each read ``COUNT 10`` and
  XACK what they got, until the group is drained. Entries consumed per
  second; every entry is delivered and acknowledged exactly once (checked:
  XPENDING is empty and the total matches).

Each measurement runs in a fresh process of its own (measuring.ClientProcesses:
valkey-glide leaves a thread running after its client is closed, which
would load whatever is measured next in the same process). Clients as
bench/cases.py opens them: iokernel ``AsyncClient`` (one shared
pipelined connection), redis-py asyncio with a ``BlockingConnectionPool`` of
50, glide ``GlideClient`` (one multiplexed connection). Also the process CPU
per operation. Benchmarks, not tests: nothing here asserts beyond the
delivery check.

Usage:
    python bench/streams_bench.py                 # 3 rounds, ~1 min
    python bench/streams_bench.py --rounds 5 --seconds 3
Writes bench/results/streams-latest.json, the plot docs/img/bench-streams.png
and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import measuring

from tests.servers import RedisServer

TASKS = 50
CLIENTS = ("iokernel", "redis-py", "glide")
STREAM = "bench:stream"
GROUP = "g"
FIELD = b"0123456789abcdef"


class Streams:
    """xadd / xreadgroup / xack / setup through one client, uniformly."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind, self.url = kind, url
        self.c: Any = None

    async def open(self) -> None:
        if self.kind == "iokernel":
            from iokernel import redis as iok

            self.c = iok.AsyncClient(self.url, client_name="bench-streams")
        elif self.kind == "redis-py":
            import redis.asyncio as ra

            pool = ra.BlockingConnectionPool.from_url(self.url, max_connections=TASKS)
            self.c = ra.Redis(connection_pool=pool)
        else:
            from glide import GlideClient, GlideClientConfiguration, NodeAddress

            u = urlparse(self.url)
            cfg = GlideClientConfiguration([NodeAddress(u.hostname or "127.0.0.1", u.port or 6379)])
            self.c = await GlideClient.create(cfg)

    async def close(self) -> None:
        if self.kind == "redis-py":
            await self.c.aclose()
            await self.c.connection_pool.disconnect()
        else:
            await self.c.close()

    async def xadd(self) -> Any:
        if self.kind == "glide":
            from glide import StreamAddOptions, TrimByMaxLen

            return await self.c.xadd(STREAM, [(b"f", FIELD)],
                                     StreamAddOptions(trim=TrimByMaxLen(False, 10000)))
        return await self.c.xadd(STREAM, {b"f": FIELD}, maxlen=10000, approximate=True)

    async def read_ack(self, consumer: str) -> int:
        """One XREADGROUP COUNT 10 and the XACK of what came; entries read."""
        if self.kind == "glide":
            from glide import StreamReadGroupOptions

            got = await self.c.xreadgroup({STREAM: ">"}, GROUP, consumer, StreamReadGroupOptions(count=10))
            ids = list((got or {}).get(STREAM.encode(), {}) or {})
        else:
            got = await self.c.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=10)
            ids = [eid for eid, _ in got[0][1]] if got else []
        if ids:
            await self.c.xack(STREAM, GROUP, *ids) if self.kind != "glide" else \
                await self.c.xack(STREAM, GROUP, ids)
        return len(ids)


def cpu() -> float:
    return time.process_time()


async def run_xadd(kind: str, url: str, seconds: float) -> dict[str, float]:
    s = Streams(kind, url)
    await s.open()
    await s.xadd()  # connect
    stop = time.perf_counter() + seconds
    done = [0] * TASKS

    async def task(i: int) -> None:
        while time.perf_counter() < stop:
            await s.xadd()
            done[i] += 1

    c0, t0 = cpu(), time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(TASKS)))
    c1, t1 = cpu(), time.perf_counter()
    await s.close()
    ops = sum(done)
    return {"ops_per_s": ops / (t1 - t0), "cpu_us_per_op": (c1 - c0) / ops * 1e6, "ops": ops}


async def run_xreadgroup(kind: str, url: str, per_task: int) -> dict[str, float]:
    total = TASKS * per_task
    # fill through a redis-py pipeline (not measured)
    import redis as rp

    ref = rp.Redis.from_url(url)
    ref.delete(STREAM)
    p = ref.pipeline(transaction=False)
    for _ in range(total):
        p.xadd(STREAM, {b"f": FIELD})
    p.execute()
    ref.xgroup_create(STREAM, GROUP, id="0")
    s = Streams(kind, url)
    await s.open()
    await s.c.ping()
    counts = [0] * TASKS

    async def task(i: int) -> None:
        while True:
            n = await s.read_ack(f"c{i}")
            if n == 0:
                return
            counts[i] += n

    c0, t0 = cpu(), time.perf_counter()
    await asyncio.gather(*(task(i) for i in range(TASKS)))
    c1, t1 = cpu(), time.perf_counter()
    await s.close()
    pending = ref.xpending(STREAM, GROUP)["pending"]
    ref.close()
    got = sum(counts)
    if got != total or pending != 0:
        raise SystemExit(f"{kind}: consumed {got} of {total}, {pending} pending")
    return {"ops_per_s": got / (t1 - t0), "cpu_us_per_op": (c1 - c0) / got * 1e6, "ops": got}


def measure(case: str, kind: str, url: str, arg: float) -> dict[str, float]:
    """One measurement (run in its own process)."""
    if case == "XADD":
        return asyncio.run(run_xadd(kind, url, arg))
    return asyncio.run(run_xreadgroup(kind, url, int(arg)))


def plot(results: dict[str, dict[str, list[dict[str, float]]]], path: Path) -> None:
    """Median ops/s per case and client, each round as a dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(9, 3.6))
    for ax, (case, per) in zip(axes, results.items()):
        meds = [statistics.median(r["ops_per_s"] for r in per[k]) for k in CLIENTS]
        ax.bar(CLIENTS, meds, color=["#2a7", "#c44", "#48c"])
        for i, k in enumerate(CLIENTS):
            ax.plot([i] * len(per[k]), [r["ops_per_s"] for r in per[k]], "k.", ms=4)
        ax.set_title(f"{case}, 50 asyncio tasks")
        ax.set_ylabel("entries/s")
    fig.tight_layout()
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=2.0, help="XADD window per client and round")
    ap.add_argument("--per-task", type=int, default=400, help="entries per task for XREADGROUP")
    args = ap.parse_args()
    results: dict[str, dict[str, list[dict[str, float]]]] = {
        case: {k: [] for k in CLIENTS} for case in ("XADD", "XREADGROUP")}
    srv = RedisServer()
    srv.start()
    try:
        url = srv.url()
        with measuring.ClientProcesses(fresh=True) as workers:
            for rnd in range(args.rounds):
                order = CLIENTS[rnd % 3:] + CLIENTS[:rnd % 3]
                for kind in order:
                    srv.flushall()
                    results["XADD"][kind].append(
                        workers.call(kind, measure, "XADD", kind, url, args.seconds))
                    srv.flushall()
                    results["XREADGROUP"][kind].append(
                        workers.call(kind, measure, "XREADGROUP", kind, url, args.per_task))
                print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr)
    finally:
        srv.stop(cleanup=True)
    out = HERE / "results" / "streams-latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    plot(results, ROOT / "docs" / "img" / "bench-streams.png")
    print("| case (50 tasks) | client | ops/s (median) | CPU µs/op | vs redis-py | vs glide |")
    print("|---|---|---|---|---|---|")
    for case, per in results.items():
        med = {k: statistics.median(r["ops_per_s"] for r in v) for k, v in per.items()}
        cpu_med = {k: statistics.median(r["cpu_us_per_op"] for r in v) for k, v in per.items()}
        for k in CLIENTS:
            print(f"| {case} | {k} | {med[k]:,.0f} | {cpu_med[k]:.1f} | "
                  f"{med[k] / med['redis-py']:.2f}x | {med[k] / med['glide']:.2f}x |")


if __name__ == "__main__":
    main()
