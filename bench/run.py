"""iokernel against redis-py (hiredis) and valkey-glide, in one interleaved run.

What it measures: throughput (median ops/s over several repetitions) of GET
(and SET) on a 16-byte value against a private redis-server, for

* asyncio tasks sharing one client: 1, 10, 50, 100, 500 tasks (the sweep);
* SET from 50 asyncio tasks;
* an explicit pipeline of 100 GETs, awaited in a loop (asyncio);
* one blocking caller; 50 threads sharing one blocking client (GET, SET);
* an explicit pipeline of 100 GETs in a loop (blocking);
* the floor (bench/floor.py): asyncio tasks awaiting futures that another
  thread resolves in batches, with no I/O at all,
* the blocking floor (`_native._floor_call`, src/python/core/floor.rs): the
  blocking rows' calls made to a helper thread that answers at once, waited
  for the way a blocking iokernel call waits: what the GIL's hand-offs and
  the threads' wake-ups cost with no I/O, and so the most any client
  waiting that way could reach; measured twice: spinning first when few
  callers wait (as iokernel's do) and never spinning (the case of 50
  threads waiting on Redis, where iokernel's callers almost never spin),

every asyncio scenario under the default loop and under uvloop. Each row
runs every client with the same number of ops; repetitions go round-robin
over all rows and clients (A B C, A B C, ... with the order rotated each
time) so machine noise hits every client alike. Each client is measured
in a process of its own, kept for the whole run (what one client leaves
running, such as valkey-glide's timer thread, would load the others'
measurements; see measuring.ClientProcesses). For each measurement the
connections the client holds are counted on the server (CLIENT LIST, by
client name, from a separate raw socket), and for iokernel also from its
own stats().

Usage:
    python bench/run.py            # full run, about 3-4 minutes on 2 cores
    python bench/run.py --quick    # about 30 s, fewer ops and repetitions
    make bench                     # the same, server started by tests/servers
    python bench/run.py --from-json bench/results/latest.json   # redo report + plot

Uses $IOKERNEL_BENCH_REDIS_URL if set; otherwise starts redis-server itself
(tests/servers' RedisServer, or a bare redis-server if that is missing).
Writes bench/results/latest.json (quick: quick.json), the markdown report
next to it, and the plot docs/img/bench-concurrency.png (quick: in
bench/results/). Benchmarks, not tests: nothing here asserts on timings.

A measurement that fails (e.g. glide raising its TimeoutError on a loaded
machine) is recorded as that client's failure for that row, listed in the
report, and the run goes on; goals that need it are left out.

This file holds the Redis cases and goals; the servers, the interleaved
run, CPU accounting, tables, plot plumbing and command line are
bench/harness.py's, shared with pg_bench.py.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import harness
import measuring
from cases import (
    KEY,
    PIPELINE,
    POOL_CAP,
    VALUE,
    connected_clients,
    measure_async,
    measure_threads,
    raw_command,
)
from harness import Server, fmt_ops
from measuring import Measurement

SWEEP = (1, 10, 50, 100, 500)
PEERS_ASYNC = ("iokernel", "redis-py", "glide")
FLOORS = ("floor-threadsafe", "floor-eventfd", "floor-same-thread")
PEERS_SYNC = ("iokernel", "redis-py")
# The blocking floor (no I/O; src/python/core/floor.rs), in the GET/SET rows.
FLOOR_SYNC = ("floor-blocking", "floor-nospin")

# Ops per measurement (same for every client of a row), chosen so the slowest
# peer of a row (redis-py asyncio, mostly) takes about 1 s on the reference
# machine and iokernel 30-250 ms.
OPS_FULL = {
    ("async", "get", 1): 5_000,
    ("async", "get", 10): 8_000,
    ("async", "get", 50): 10_000,
    ("async", "get", 100): 10_000,
    ("async", "get", 500): 10_000,
    ("async", "set", 50): 8_000,
    ("async", "pipeline", 1): 30_000,
    ("threads", "get", 1): 8_000,
    ("threads", "get", 50): 12_000,
    ("threads", "set", 50): 12_000,
    ("threads", "pipeline", 1): 60_000,
}


@dataclass(frozen=True)
class Row:
    kind: str  # "async" | "threads"
    op: str  # "get" | "set" | "pipeline"
    conc: int
    loop: str  # "asyncio" | "uvloop" | "-" (blocking)
    clients: tuple[str, ...]
    ops: int

    @property
    def id(self) -> str:
        return f"{self.kind}-{self.op}-{self.conc}-{self.loop}"

    @property
    def scenario(self) -> str:
        if self.op == "pipeline":
            how = "asyncio" if self.kind == "async" else "blocking"
            return f"pipeline of {PIPELINE} GETs, 1 {how} caller"
        op = self.op.upper()
        if self.kind == "async":
            who = "1 asyncio task" if self.conc == 1 else f"{self.conc} asyncio tasks"
        else:
            who = "1 blocking caller" if self.conc == 1 else f"{self.conc} threads, 1 client"
        return f"{op}, {who}"


def build_rows(loops: list[str], scale: float, floors: bool) -> list[Row]:
    def n(kind: str, op: str, conc: int) -> int:
        base = OPS_FULL[(kind, op, conc)]
        unit = PIPELINE if op == "pipeline" else conc
        return max(unit, int(base * scale) // unit * unit)

    rows: list[Row] = []
    for loop in loops:
        for c in SWEEP:
            clients = PEERS_ASYNC + (FLOORS if floors else ())
            rows.append(Row("async", "get", c, loop, clients, n("async", "get", c)))
        rows.append(Row("async", "set", 50, loop, PEERS_ASYNC, n("async", "set", 50)))
        rows.append(Row("async", "pipeline", 1, loop, PEERS_ASYNC, n("async", "pipeline", 1)))
    sync = PEERS_SYNC + (FLOOR_SYNC if floors else ())
    rows.append(Row("threads", "get", 1, "-", sync, n("threads", "get", 1)))
    rows.append(Row("threads", "get", 50, "-", sync, n("threads", "get", 50)))
    rows.append(Row("threads", "set", 50, "-", sync, n("threads", "set", 50)))
    rows.append(Row("threads", "pipeline", 1, "-", PEERS_SYNC, n("threads", "pipeline", 1)))
    return rows


# ------------------------------------------------------------------ server
@contextlib.contextmanager
def redis_server() -> Iterator[tuple[str, str]]:
    """(url, how) of the server to use; started here unless the env names one."""
    with harness.server("redis", "IOKERNEL_BENCH_REDIS_URL", _bare_redis) as srv:
        yield srv.url, srv.how


@contextlib.contextmanager
def _bare_redis() -> Iterator[Server]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    d = tempfile.mkdtemp(prefix="iok-bench-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", d, "--protected-mode", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 15
        while True:
            with contextlib.suppress(OSError):
                if raw_command(url, "PING", timeout=1) == "PONG":
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {port}")
            time.sleep(0.05)
        yield Server(url, "started by bench/run.py (bare redis-server)")
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        shutil.rmtree(d, ignore_errors=True)


# ------------------------------------------------------------------ running
_tags = 0


def measure(row: Row, client: str, url: str, workers: measuring.ClientProcesses) -> Measurement:
    """One measurement, in `client`'s own process (see ClientProcesses)."""
    global _tags
    _tags += 1
    tag = f"bench-{client}-{os.getpid()}-{_tags}"
    if row.kind == "async":
        return workers.call(client, measure_async, client, row.loop, row.op, row.conc,
                            row.ops, url, tag)
    return workers.call(client, measure_threads, client, row.op, row.conc, row.ops, url, tag)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--loops", default="asyncio,uvloop", help="comma list: asyncio,uvloop")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor measurements")
    ap.add_argument("--ab-loop-batching", action="store_true",
                    help="also measure iokernel with loop_batching=False ('iokernel-nobatch', "
                         "asyncio rows)")


def run(r: harness.Run) -> dict[str, Any]:
    loops = [x.strip() for x in r.args.loops.split(",") if x.strip()]
    rows = harness.select(build_rows(loops, r.scale, floors=not r.args.no_floor),
                          r.args.only, "row")
    if r.args.ab_loop_batching:
        rows = [dataclasses.replace(row, clients=(*row.clients[:1], "iokernel-nobatch",
                                                  *row.clients[1:]))
                if row.kind == "async" else row for row in rows]
    with redis_server() as (url, how):
        raw_command(url, "SET", KEY, VALUE.decode())
        env = environment(url, how)
        print(f"# {r.command}\n# server {url} ({how}), redis {env['redis_server']}; "
              f"{env['cpus']} CPUs; {r.reps} reps; load {env['loadavg_start']}",
              file=sys.stderr, flush=True)
        with measuring.ClientProcesses(fresh=True) as workers:
            results = harness.interleave(rows, lambda row: row.clients, r.reps,
                                         lambda row, client: measure(row, client, url, workers),
                                         keep_going=True, verbose=r.verbose, env=env)
        env["connected_clients_after"] = connected_clients(url)
    summ = harness.summaries(results)
    return {
        "command": r.command,
        "reps": r.reps,
        "scale": r.scale,
        "environment": env,
        "rows": [{"id": row.id, "scenario": row.scenario, "kind": row.kind, "op": row.op,
                  "concurrency": row.conc, "loop": row.loop, "ops": row.ops,
                  "clients": summ[row.id]} for row in rows],
        "goals": goals(rows, summ)[1],
    }


# ------------------------------------------------------------------ reporting
def rows_from(data: dict[str, Any]) -> tuple[list[Row], dict[str, dict[str, Any]]]:
    """The rows and their per-client summaries, back from the JSON results."""
    rows = [Row(r["kind"], r["op"], r["concurrency"], r["loop"], tuple(r["clients"]), r["ops"])
            for r in data["rows"]]
    return rows, {r["id"]: r["clients"] for r in data["rows"]}


def med(results: dict[str, dict[str, Any]], row: Row, client: str) -> float | None:
    rec = results[row.id].get(client)
    return None if rec is None or rec.get("median") is None else float(rec["median"])


def floor_table(rows: list[Row], results: dict[str, dict[str, Any]]) -> list[str]:
    out = [
        (
            "| asyncio tasks | loop | floor: threadsafe | floor: eventfd | floor: same thread "
            "| iokernel (GET) | iokernel µs/op | floor (eventfd) µs/op "
            "| **iokernel − floor, µs/op** | iokernel − threadsafe floor, µs/op |"
        ),
        "|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if "floor-eventfd" not in row.clients:
            continue
        iok = med(results, row, "iokernel")
        fe = med(results, row, "floor-eventfd")
        ft = med(results, row, "floor-threadsafe")
        fs = med(results, row, "floor-same-thread")
        if not (iok and fe and ft):
            continue  # a failed measurement (listed under the report)
        us_i, us_e, us_t = 1e6 / iok, 1e6 / fe, 1e6 / ft
        out.append(
            f"| {row.conc} | {row.loop} | {fmt_ops(ft)} | {fmt_ops(fe)} | {fmt_ops(fs)} "
            f"| {fmt_ops(iok)} | {us_i:.2f} | {us_e:.2f} | **{us_i - us_e:.2f}** "
            f"| {us_i - us_t:.2f} |"
        )
    return out


def blocking_floor_table(rows: list[Row], results: dict[str, dict[str, Any]]) -> list[str]:
    """Blocking rows: iokernel against the floor (a no-I/O blocking call),
    spinning as iokernel's callers do when few wait, and never spinning (as
    iokernel's callers at 50 threads, many of them waiting, practically
    never do); and how far above redis-py the non-spinning floor is."""
    out = [
        "| scenario | floor (no I/O) | floor, never spinning | iokernel | redis-py "
        "| iokernel / floor | iokernel / floor never spinning "
        "| **floor never spinning / redis-py** |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        if "floor-blocking" not in row.clients:
            continue
        fl, iok = med(results, row, "floor-blocking"), med(results, row, "iokernel")
        fn, rp = med(results, row, "floor-nospin"), med(results, row, "redis-py")
        if not (fl and fn and iok and rp):
            continue  # a failed measurement (listed under the report)
        out.append(
            f"| {row.scenario} | {fmt_ops(fl)} | {fmt_ops(fn)} | {fmt_ops(iok)} | {fmt_ops(rp)} "
            f"| {iok / fl:.2f} | {iok / fn:.2f} | **{fn / rp:.2f}×** |"
        )
    return out


def goals(rows: list[Row], results: dict[str, dict[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []

    def add(goal: str, row: Row | None, peer: str, need: float) -> None:
        if row is None:
            return
        iok, p = med(results, row, "iokernel"), med(results, row, peer)
        if not iok or not p:
            return
        r = iok / p
        ci = results[row.id]["iokernel"].get("cpu_us_per_op_median")
        cp = results[row.id][peer].get("cpu_us_per_op_median")
        items.append({"goal": goal, "loop": row.loop, "target": need, "ratio": r,
                      "cpu_ratio": (cp / ci) if ci and cp else None, "met": r >= need})

    def find(kind: str, op: str, conc: int, loop: str) -> Row | None:
        for r in rows:
            if (r.kind, r.op, r.conc, r.loop) == (kind, op, conc, loop):
                return r
        return None

    # Issue 15's goals (the hot path): 6.5× glide, 15× redis-py at 50 tasks;
    # 8× redis-py from 50 threads (GET; SET is held to the same).
    for loop in ("asyncio", "uvloop"):
        add("50 asyncio tasks (GET): ≥ 6.5× valkey-glide", find("async", "get", 50, loop),
            "glide", 6.5)
        add("50 asyncio tasks (GET): ≥ 15× redis-py asyncio", find("async", "get", 50, loop),
            "redis-py", 15)
    add("50 threads (GET): ≥ 8× redis-py", find("threads", "get", 50, "-"), "redis-py", 8)
    add("50 threads (SET): ≥ 8× redis-py", find("threads", "set", 50, "-"), "redis-py", 8)
    for loop in ("asyncio", "uvloop"):
        row = find("async", "get", 50, loop)
        iok = med(results, row, "iokernel") if row else None
        fe = med(results, row, "floor-eventfd") if row and "floor-eventfd" in row.clients else None
        if iok and fe:
            over = 1e6 / iok - 1e6 / fe
            items.append({"goal": "50 asyncio tasks (GET): iokernel − eventfd floor ≤ 0.6 µs",
                          "loop": loop, "target": 0.6, "ratio": None, "over_floor_us": over,
                          "met": over <= 0.6})
    add("explicit pipeline of 100, blocking: ≥ 1× redis-py",
        find("threads", "pipeline", 1, "-"), "redis-py", 1)
    for loop in ("asyncio", "uvloop"):
        add("explicit pipeline of 100, asyncio: ≥ 1× redis-py asyncio",
            find("async", "pipeline", 1, loop), "redis-py", 1)

    worst = 0
    for row in rows:
        rec = results[row.id].get("iokernel")
        if rec:
            for c in (rec.get("conns_server_max"), rec.get("conns_stats_max")):
                if c is not None:
                    worst = max(worst, c)
    items.append({"goal": "iokernel: never more than one connection per address",
                  "loop": "all", "target": 1, "ratio": None, "max_connections": worst,
                  "met": worst <= 1})

    out = [
        "| goal | loop | measured (throughput ratio) | status | CPU per op, peer / iokernel |",
        "|---|---|--:|:-:|--:|",
    ]
    for g in items:
        if g["ratio"] is not None:
            measured = f"{g['ratio']:.2f}×"
        elif "over_floor_us" in g:
            measured = f"{g['over_floor_us']:.2f} µs"
        else:
            measured = f"max {g['max_connections']} connection(s)"
        cpu = f"{g['cpu_ratio']:.2f}×" if g.get("cpu_ratio") else "-"
        out.append(f"| {g['goal']} | {g['loop']} | {measured} | "
                   f"{'met' if g['met'] else '**missed**'} | {cpu} |")
    return out, items


def plot(rows: list[Row], results: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Left: GET throughput against concurrency; right: CPU time per GET."""
    fig, (ax, ax2) = harness.figure([3, 2], (13, 5.5))
    styles = {
        "iokernel": ("tab:blue", "o"),
        "redis-py": ("tab:red", "s"),
        "glide": ("tab:green", "^"),
        "floor-eventfd": ("gray", "."),
    }
    labels = {
        "iokernel": "iokernel (1 connection)",
        "redis-py": f"redis-py asyncio + hiredis (pool of min(tasks, {POOL_CAP}))",
        "glide": "valkey-glide (1 connection)",
        "floor-eventfd": "floor: futures resolved from a thread, no I/O",
    }
    for loop in ("asyncio", "uvloop"):
        sweep = sorted(
            (r for r in rows if r.kind == "async" and r.op == "get" and r.loop == loop),
            key=lambda r: r.conc,
        )
        if not sweep:
            continue
        for client, (color, marker) in styles.items():
            if client not in sweep[0].clients:
                continue
            # rows where this client failed every repetition have no median
            done = [r for r in sweep if results[r.id][client].get("median") is not None]
            if not done:
                continue
            xs = [r.conc for r in done]
            recs = [results[r.id][client] for r in done]
            ls = ":" if client.startswith("floor") else ("--" if loop == "uvloop" else "-")
            kw = {"color": color, "marker": marker, "linestyle": ls,
                  "alpha": 0.6 if loop == "uvloop" else 1.0, "label": f"{labels[client]}, {loop}"}
            ax.plot(xs, [r["median"] for r in recs], **kw)
            cpu = [r.get("cpu_us_per_op_median") for r in recs]
            if not client.startswith("floor") and all(c is not None for c in cpu):
                ax2.plot(xs, cpu, **kw)
    for a in (ax, ax2):
        a.set_xscale("log")
        a.set_yscale("log")
        a.set_xticks(list(SWEEP))
        a.set_xticklabels([str(c) for c in SWEEP])
        a.set_xlabel("concurrent asyncio tasks (GET, one shared client)")
        a.grid(True, which="both", alpha=0.3)
    ax.set_ylabel("ops/s (median)")
    ax.set_title(title, fontsize=10)
    ax2.set_ylabel("client CPU µs per GET (whole process, median)")
    ax2.set_title("CPU per operation (lower is better)", fontsize=10)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
    harness.save_figure(fig, path)


def environment(url: str, how: str) -> dict[str, Any]:
    info = raw_command(url, "INFO", "server")
    redis_version = ""
    if isinstance(info, bytes):
        for line in info.decode().splitlines():
            if line.startswith("redis_version:"):
                redis_version = line.split(":", 1)[1].strip()
    import redis.utils

    return harness.environment(
        how, ("iokernel", "redis", "hiredis", "valkey-glide", "uvloop"),
        redis_server=redis_version, hiredis_in_use=bool(redis.utils.HIREDIS_AVAILABLE))


def render(data: dict[str, Any]) -> str:
    rows, results = rows_from(data)
    env = data["environment"]
    trows = [((row.scenario, row.loop), results[row.id], "") for row in rows]
    ftable = floor_table(rows, results)
    btable = blocking_floor_table(rows, results)
    gtable, _ = goals(rows, results)
    report = [
        harness.run_line(data, f"redis-server {env['redis_server']}"),
        "",
        *harness.throughput_table(("scenario", "loop"), trows, PEERS_ASYNC),
        "",
        (
            "Connections: counted on the server (CLIENT LIST by client name) at the end of "
            "each timed run, max over repetitions; iokernel's own `stats()` in parentheses. "
            f"redis-py pools hold min(concurrency, {POOL_CAP}). "
            "Spread: (max − min) / median over repetitions, worst client of the row."
        ),
        "",
    ]
    if ftable[2:]:
        report += ["Floor (no I/O) and iokernel's overhead above it:", "", *ftable, ""]
    if btable[2:]:
        report += [
            "Blocking floor (no I/O: a helper thread answers each call at once; the caller "
            "waits as a blocking iokernel call does, GIL released, spinning first when few "
            "wait; and the same never spinning) against iokernel and redis-py:",
            "", *btable, "",
        ]
    report += [
        (
            "CPU time per operation, µs (median; client = the whole benchmark process, all "
            "its threads; less disturbed by other load than throughput):"
        ),
        "",
        *harness.cpu_table(("scenario", "loop"), trows, PEERS_ASYNC, "redis-server"),
        "",
        "Goals:", "", *gtable, "",
    ]
    errors = [f"{rid} / {client}: {e}" for rid, recs in results.items()
              for client, s in recs.items() for e in s.get("errors", [])]
    if errors:
        report += ["Failed measurements (the run went on without them):", "",
                   *[f"* {e}" for e in errors], ""]
    return "\n".join(report)


def draw(data: dict[str, Any], png: Path) -> bool:
    rows, results = rows_from(data)
    if not any(r.kind == "async" and r.op == "get" for r in rows):
        return False
    env = data["environment"]
    plot(rows, results, png,
         f"GET throughput vs concurrency — {env['cpus']} CPUs, redis-server "
         f"{env['redis_server']} on loopback, median of {data['reps']}")
    return True


BENCH = harness.Bench(
    doc=__doc__, script="run.py", results="latest", quick_results="quick",
    plot=ROOT / "docs" / "img" / "bench-concurrency.png",
    quick_plot=HERE / "results" / "quick-concurrency.png",
    quick_help="~30 s: fewer ops and repetitions", quick_scale=0.25,
    add_arguments=add_arguments, run=run, render=render, draw=draw,
)


def main(argv: list[str] | None = None) -> int:
    return harness.main(BENCH, argv)


if __name__ == "__main__":
    sys.exit(main())
