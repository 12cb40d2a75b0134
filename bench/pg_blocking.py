"""Blocking PostgreSQL calls from threads: iokernel's ``pg.Client`` (one,
shared by every thread) against psycopg 3's ``ConnectionPool`` (min(threads,
10) connections, autocommit, its automatic prepare), ``SELECT $1::int + 1``
from 1, 10 and 50 threads, interleaved, each measurement in a fresh process.

bench/pg_bench.py measures the asyncio clients; this is the blocking side a
sync web worker or a thread pool uses, where psycopg is the usual choice.
Every answer is checked (warm-up and timed calls alike).

    python bench/pg_blocking.py [--threads 1,10,50] [--reps 5] [--ops 12000]

Starts its own PostgreSQL (tests/servers) unless $IOKERNEL_BENCH_PG_DSN
names one; writes the table to bench/results/pg_blocking.md too. Not a
test: nothing is asserted on timings.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import harness
import measuring
from measuring import Clock, Measurement, timed_threads
from pg_cases import POOL, SQL_ADD, Admin, with_params

CLIENTS = ("iokernel", "psycopg")


def _open(client: str, dsn: str, app: str, threads: int) -> tuple[Callable[[int], Any],
                                                                   Callable[[], None]]:
    """(call(i) -> the answer to SELECT i + 1, close) for `client`."""
    if client == "iokernel":
        from iokernel import pg

        db = pg.Client(with_params(dsn, application_name=app), timeout=60.0)
        sql = SQL_ADD[0]
        return (lambda i: db.fetchval(sql, i)), db.close
    if client == "psycopg":
        from psycopg_pool import ConnectionPool

        n = min(threads, POOL)
        pool = ConnectionPool(dsn, min_size=n, max_size=n, open=False,
                              kwargs={"application_name": app, "autocommit": True})
        pool.open(wait=True)
        sql = SQL_ADD[1]

        def call(i: int) -> Any:
            with pool.connection() as conn:
                row = conn.execute(sql, (i,)).fetchone()
                return None if row is None else row[0]

        return call, pool.close
    raise ValueError(f"unknown client {client!r}")


def measure(client: str, threads: int, ops: int, dsn: str, postmaster: int | None,
            app: str) -> Measurement:
    """`ops` calls from `threads` threads sharing one client, answers checked."""
    call, close = _open(client, dsn, app, threads)
    try:
        def body(n: int) -> None:
            for i in range(n):
                got = call(i)
                if got != i + 1:
                    raise AssertionError(f"{client}: SELECT {i} + 1 answered {got!r}")

        clock = Clock(lambda: measuring.process_tree_cpu(postmaster))
        counts = [ops // threads] * threads
        timed_threads(body, counts, 20, clock)
        m = clock.measurement(sum(counts))
        admin = Admin(dsn)
        try:
            m.conns_server = admin.connections(app)
        finally:
            admin.close()
        return m
    finally:
        close()


def sweep(dsn: str, postmaster: int | None, counts: list[int], reps: int,
          ops: int) -> dict[tuple[str, int], list[Measurement]]:
    got: dict[tuple[str, int], list[Measurement]] = {}
    with measuring.ClientProcesses(fresh=True) as workers:
        for rep in range(reps):
            for n in counts:
                first = rep % len(CLIENTS)
                for client in CLIENTS[first:] + CLIENTS[:first]:  # rotate the order
                    app = f"iok-pgblk-{client}-{os.getpid()}-{rep}-{n}"
                    m = workers.call(client, measure, client, n, ops, dsn, postmaster, app)
                    got.setdefault((client, n), []).append(m)
                    print(f"  rep {rep + 1} {n:3d} threads {client:9s} "
                          f"{m.ops_per_s / 1000:7.1f} k ops/s  conns {m.conns_server}",
                          file=sys.stderr, flush=True)
    return got


def report(got: dict[tuple[str, int], list[Measurement]], counts: list[int]) -> list[str]:
    def med(client: str, n: int, f: Callable[[Measurement], float | None]) -> float | None:
        vals = [v for v in (f(m) for m in got[(client, n)]) if v is not None]
        return statistics.median(vals) if vals else None

    def us(x: float | None) -> str:
        return "-" if x is None else f"{x:.1f}"

    out = ["| threads | iokernel | psycopg | iokernel / psycopg | connections iokernel / psycopg "
           "| CPU µs/op iokernel / psycopg | server CPU µs/op iokernel / psycopg |",
           "|--:|--:|--:|--:|:-:|:-:|:-:|"]
    for n in counts:
        i, p = med("iokernel", n, lambda m: m.ops_per_s), med("psycopg", n, lambda m: m.ops_per_s)
        conns = [max(m.conns_server or 0 for m in got[(c, n)]) for c in CLIENTS]
        cpu = [med(c, n, lambda m: 1e6 * m.cpu_s / m.ops if m.cpu_s is not None else None)
               for c in CLIENTS]
        srv = [med(c, n, lambda m: 1e6 * m.server_cpu_s / m.ops
                   if m.server_cpu_s is not None else None) for c in CLIENTS]
        out.append(f"| {n} | {harness.fmt_ops(i)} | {harness.fmt_ops(p)} | "
                   f"{harness.ratio(i, p)} | {conns[0]} / {conns[1]} | "
                   f"{us(cpu[0])} / {us(cpu[1])} | {us(srv[0])} / {us(srv[1])} |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="1,10,50")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--ops", type=int, default=12_000, help="per measurement, every client")
    args = ap.parse_args()
    counts = [int(x) for x in args.threads.split(",") if x.strip()]
    with harness.server("postgres", "IOKERNEL_BENCH_PG_DSN") as srv:
        got = sweep(srv.url, srv.pid, counts, args.reps, args.ops)
    harness.write_table("pg_blocking", f"python bench/pg_blocking.py --threads {args.threads} "
                        f"--reps {args.reps} --ops {args.ops}", args.reps, report(got, counts))


if __name__ == "__main__":
    main()
