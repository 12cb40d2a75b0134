"""iokernel's PostgreSQL client against asyncpg, psycopg 3 and psqlpy, interleaved,
with pgbench on the same server as the ceiling.

Scenarios (asyncio, one shared client or pool per measurement):

* ``SELECT $1::int + 1`` from 1, 50 and 500 concurrent tasks;
* a primary-key lookup on pgbench_accounts (``pgbench -i -s 10``: 1,000,000
  rows) from 50 tasks, with random keys;
* executemany of 10,000 rows (int, text, float8) into an unlogged table, one
  caller (twice per measurement; throughput in rows/s).

Peers: asyncpg (``create_pool``, 10 connections), psycopg 3
(``AsyncConnectionPool``, 10 connections, auto-prepare), psqlpy
(``ConnectionPool``, max 10). iokernel: one ``pg.AsyncClient`` with its
defaults. Ceiling: ``pgbench -S -M prepared -c 10 -j 2 -T 10`` (select-only
primary-key lookups, C client, prepared statements) on the same server, once
per repetition.

Each repetition runs every scenario and every client of it in turn, the order
rotated each time (A B C D, B C D A, ...), so noise hits all alike. Each
measurement opens a fresh client with its own ``application_name``, warms it
up at full concurrency (and checks its answers), times the ops, and counts its
connections in ``pg_stat_activity`` (sampled every 50 ms from another
connection while timed; max). CPU per op: this process (all threads) and the
PostgreSQL server (all its processes, when started here).

Usage:
    python bench/pg_bench.py             # full run, ~4-5 min on 2 cores
    python bench/pg_bench.py --quick     # ~1 min: fewer ops, 3 repetitions, pgbench -T 5
    python bench/pg_bench.py --only select-50 --reps 7 --peers iokernel,asyncpg

Starts its own PostgreSQL (tests/servers.py PostgresServer) unless
$IOKERNEL_BENCH_PG_DSN names one. Writes bench/results/pg-latest.json and
.md (quick: pg-quick.*) and the plot docs/img/bench-pg.png (quick: in
bench/results/). Benchmarks, not tests: nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import common
from common import fmt_ops, ratio

PEERS = ("iokernel", "asyncpg", "psycopg", "psqlpy")
POOL = 10
SCALE = 10  # pgbench -i -s 10: 1,000,000 accounts
ACCOUNTS = 100_000 * SCALE
MANY_ROWS = 10_000
MANY_CALLS = 2  # executemany calls per measurement

SQL_ADD = ("SELECT $1::int + 1", "SELECT %s::int + 1")
SQL_PK = ("SELECT abalance FROM pgbench_accounts WHERE aid = $1",
          "SELECT abalance FROM pgbench_accounts WHERE aid = %s")
SQL_MANY = ("INSERT INTO bench_many (a, b, c) VALUES ($1, $2, $3)",
            "INSERT INTO bench_many (a, b, c) VALUES (%s, %s, %s)")


@dataclass(frozen=True)
class Scenario:
    id: str
    label: str
    kind: str  # "select" | "pk" | "many"
    conc: int
    ops: int  # queries (select, pk) or rows (many) per measurement


def scenarios(scale: float) -> list[Scenario]:
    def n(base: int, unit: int) -> int:
        return max(unit, int(base * scale) // unit * unit)

    return [
        Scenario("select-1", "SELECT $1::int + 1, 1 task", "select", 1, n(3_000, 1)),
        Scenario("select-50", "SELECT $1::int + 1, 50 tasks", "select", 50, n(20_000, 50)),
        Scenario("select-500", "SELECT $1::int + 1, 500 tasks", "select", 500, n(20_000, 500)),
        Scenario("pk-50", "primary-key lookup (pgbench_accounts), 50 tasks", "pk", 50,
                 n(20_000, 50)),
        Scenario("many", f"executemany of {MANY_ROWS:,} rows, 1 caller", "many", 1,
                 MANY_ROWS * MANY_CALLS),
    ]


# ------------------------------------------------------------------ clients
class Client:
    """One peer, opened for one measurement."""

    name = ""

    async def open(self, dsn: str, app: str) -> None:
        raise NotImplementedError

    async def val(self, sql: tuple[str, str], arg: int) -> Any:
        raise NotImplementedError

    async def many(self, sql: tuple[str, str], rows: list[tuple[Any, ...]]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def stats_connections(self) -> int | None:
        return None


class IokernelClient(Client):
    name = "iokernel"

    async def open(self, dsn: str, app: str) -> None:
        from iokernel import pg

        self.db = pg.AsyncClient(with_params(dsn, application_name=app), timeout=60.0)

    async def val(self, sql: tuple[str, str], arg: int) -> Any:
        return await self.db.fetchval(sql[0], arg)

    async def many(self, sql: tuple[str, str], rows: list[tuple[Any, ...]]) -> None:
        await self.db.executemany(sql[0], rows)

    async def close(self) -> None:
        closed = self.db.close()
        if asyncio.iscoroutine(closed):
            await closed

    def stats_connections(self) -> int | None:
        s = self.db.stats()
        return int(s.get("connections", 0)) + int(s.get("dedicated_connections", 0))


class AsyncpgClient(Client):
    name = "asyncpg"

    async def open(self, dsn: str, app: str) -> None:
        import asyncpg

        self.pool = await asyncpg.create_pool(
            dsn, min_size=POOL, max_size=POOL, server_settings={"application_name": app}
        )

    async def val(self, sql: tuple[str, str], arg: int) -> Any:
        return await self.pool.fetchval(sql[0], arg)

    async def many(self, sql: tuple[str, str], rows: list[tuple[Any, ...]]) -> None:
        await self.pool.executemany(sql[0], rows)

    async def close(self) -> None:
        await self.pool.close()


class PsycopgClient(Client):
    name = "psycopg"

    async def open(self, dsn: str, app: str) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.pool = AsyncConnectionPool(
            dsn, min_size=POOL, max_size=POOL, open=False,
            kwargs={"application_name": app, "autocommit": True},
        )
        await self.pool.open(wait=True)

    async def val(self, sql: tuple[str, str], arg: int) -> Any:
        async with self.pool.connection() as conn:
            cur = await conn.execute(sql[1], (arg,))
            row = await cur.fetchone()
            return None if row is None else row[0]

    async def many(self, sql: tuple[str, str], rows: list[tuple[Any, ...]]) -> None:
        async with self.pool.connection() as conn, conn.cursor() as cur:
            await cur.executemany(sql[1], rows)

    async def close(self) -> None:
        await self.pool.close()


class PsqlpyClient(Client):
    name = "psqlpy"

    async def open(self, dsn: str, app: str) -> None:
        import psqlpy

        self.pool = psqlpy.ConnectionPool(dsn=with_params(dsn, application_name=app),
                                          max_db_pool_size=POOL)

    async def val(self, sql: tuple[str, str], arg: int) -> Any:
        async with self.pool.acquire() as conn:
            return await conn.fetch_val(sql[0], [arg])

    async def many(self, sql: tuple[str, str], rows: list[tuple[Any, ...]]) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute_many(sql[0], [list(r) for r in rows])

    async def close(self) -> None:
        self.pool.close()


CLIENTS: dict[str, type[Client]] = {
    c.name: c for c in (IokernelClient, AsyncpgClient, PsycopgClient, PsqlpyClient)
}


def with_params(dsn: str, **params: str) -> str:
    parts = urlsplit(dsn)
    q = dict(parse_qsl(parts.query))
    q.update(params)
    return urlunsplit(parts._replace(query=urlencode(q)))


# ------------------------------------------------------------------ server side
class Admin:
    """A psycopg (blocking) connection of the benchmark's own: setup, connection counts."""

    def __init__(self, dsn: str) -> None:
        import psycopg

        self.conn = psycopg.connect(with_params(dsn, application_name="iok-bench-admin"),
                                    autocommit=True)
        self.lock = threading.Lock()

    def sql(self, query: str, *args: Any) -> Any:
        with self.lock:
            cur = self.conn.execute(query, args or None)
            return cur.fetchall() if cur.description else None

    def connections(self, app: str) -> int:
        return int(self.sql(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", app)[0][0])

    def version(self) -> str:
        return str(self.sql("SHOW server_version")[0][0])

    def close(self) -> None:
        self.conn.close()


class ConnSampler:
    """Max connections with this application_name, sampled while a run is timed."""

    def __init__(self, admin: Admin, app: str, every: float = 0.05) -> None:
        self.admin, self.app, self.every = admin, app, every
        self.max = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.max = max(self.max, self.admin.connections(self.app))
            self._stop.wait(self.every)

    def __enter__(self) -> ConnSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        with contextlib.suppress(Exception):
            self.max = max(self.max, self.admin.connections(self.app))


def server_cpu_s(postmaster: int | None) -> float | None:
    """CPU seconds of the PostgreSQL server: every live process of it (postmaster,
    backends, checkpointer, ...) from /proc/PID/schedstat, in nanoseconds, plus
    the children the postmaster already reaped (cutime + cstime, clock ticks)."""
    if postmaster is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
            fields = raw[raw.rindex(")") + 2:].split()
            if int(d) != postmaster and int(fields[1]) != postmaster:  # ppid
                continue
            total += int(Path(f"/proc/{d}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
        if int(d) == postmaster:
            total += (int(fields[13]) + int(fields[14])) / tick  # cutime, cstime
    return total


@contextlib.contextmanager
def pg_server() -> Iterator[tuple[str, str, int | None, Any]]:
    """(dsn, how, postmaster pid, PostgresServer or None)."""
    dsn = os.environ.get("IOKERNEL_BENCH_PG_DSN")
    if dsn:
        yield dsn, "given by IOKERNEL_BENCH_PG_DSN", None, None
        return
    from tests.servers import PostgresServer

    with PostgresServer() as srv:
        yield srv.dsn(), "started by tests/servers.py PostgresServer", srv.pid, srv


def pgbench_bin() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    from tests.servers import pg_bindir

    return str(pg_bindir() / "pgbench")


def pgbench_env(dsn: str) -> tuple[list[str], dict[str, str]]:
    u = urlsplit(dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    from urllib.parse import unquote

    env["PGPASSWORD"] = unquote(u.password or "")
    args = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432),
            "-U", unquote(u.username or "postgres"), unquote(u.path.lstrip("/") or "postgres")]
    return args, env


def pgbench_init(dsn: str) -> float:
    conn, env = pgbench_env(dsn)
    t0 = time.monotonic()
    subprocess.run([pgbench_bin(), "-i", "-s", str(SCALE), "-q", *conn], env=env, check=True,
                   capture_output=True, timeout=600)
    return time.monotonic() - t0


def pgbench_run(dsn: str, seconds: int, postmaster: int | None) -> dict[str, Any]:
    conn, env = pgbench_env(dsn)
    argv = [pgbench_bin(), "-S", "-M", "prepared", "-c", str(POOL), "-j", "2",
            "-T", str(seconds), "-n", *conn]
    cpu0, srv0 = _children_cpu(), server_cpu_s(postmaster)
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True,
                         timeout=seconds + 120).stdout
    cpu1, srv1 = _children_cpu(), server_cpu_s(postmaster)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    n = re.search(r"number of transactions actually processed: (\d+)", out)
    if not m:
        raise RuntimeError(f"cannot read pgbench's tps from:\n{out}")
    txs = int(n.group(1)) if n else None
    return {
        "tps": float(m.group(1)),
        "transactions": txs,
        "cpu_us_per_op": (cpu1 - cpu0) * 1e6 / txs if txs else None,
        "server_cpu_us_per_op": ((srv1 - srv0) * 1e6 / txs
                                 if txs and srv0 is not None and srv1 is not None else None),
        "command": " ".join(["pgbench", *argv[1:]]),
    }


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


# ------------------------------------------------------------------ measuring
@dataclass
class Measurement:
    ops: int
    seconds: float
    conns_server: int
    conns_stats: int | None
    cpu_s: float
    server_cpu_s: float | None

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds


_tag = 0


def new_app(client: str) -> str:
    global _tag
    _tag += 1
    return f"iok-bench-{client}-{os.getpid()}-{_tag}"


def many_rows(n: int, salt: int) -> list[tuple[int, str, float]]:
    return [(i, f"row {i} of {salt}", i * 0.5) for i in range(n)]


async def _measure(sc: Scenario, client_name: str, dsn: str, admin: Admin,
                   postmaster: int | None) -> Measurement:
    app = new_app(client_name)
    client = CLIENTS[client_name]()
    await client.open(dsn, app)
    rng = random.Random(hash((sc.id, client_name)) & 0xFFFF)
    try:
        if sc.kind == "many":
            rows = many_rows(MANY_ROWS, 1)
            admin.sql("TRUNCATE bench_many")
            await client.many(SQL_MANY, rows[:100])  # warm up: prepare, connect
            admin.sql("TRUNCATE bench_many")
            batches = [many_rows(MANY_ROWS, k) for k in range(MANY_CALLS)]

            async def timed() -> None:
                for b in batches:
                    await client.many(SQL_MANY, b)
        else:
            sql = SQL_ADD if sc.kind == "select" else SQL_PK
            per_task = sc.ops // sc.conc
            args = ([rng.randrange(1, ACCOUNTS + 1) for _ in range(per_task)]
                    if sc.kind == "pk" else list(range(per_task)))

            async def warm(i: int) -> None:
                for j in range(3):
                    got = await client.val(sql, i + j if sc.kind == "select" else 1 + i)
                    if sc.kind == "select" and got != i + j + 1:
                        raise AssertionError(f"{client_name}: {sql[0]} with {i + j} gave {got!r}")

            await asyncio.gather(*(warm(i) for i in range(sc.conc)))

            async def task() -> None:
                for a in args:
                    await client.val(sql, a)

            async def timed() -> None:
                if sc.conc == 1:
                    await task()
                else:
                    await asyncio.gather(*(task() for _ in range(sc.conc)))

        with ConnSampler(admin, app) as sampler:
            srv0 = server_cpu_s(postmaster)
            cpu0 = time.process_time()
            t0 = time.perf_counter()
            await timed()
            seconds = time.perf_counter() - t0
            cpu = time.process_time() - cpu0
            srv1 = server_cpu_s(postmaster)
        if sc.kind == "many":
            got_rows = admin.sql("SELECT count(*) FROM bench_many")[0][0]
            if got_rows != sc.ops:
                raise AssertionError(f"{client_name}: executemany left {got_rows} rows, not {sc.ops}")
        return Measurement(
            ops=sc.ops, seconds=seconds, conns_server=sampler.max,
            conns_stats=client.stats_connections(), cpu_s=cpu,
            server_cpu_s=None if srv0 is None or srv1 is None else srv1 - srv0,
        )
    finally:
        await client.close()


def measure(sc: Scenario, client: str, dsn: str, admin: Admin, postmaster: int | None,
            loop: str) -> Measurement:
    coro = _measure(sc, client, dsn, admin, postmaster)
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)  # type: ignore[no-any-return]
    return asyncio.run(coro)


@dataclass
class Record:
    ops_per_s: list[float] = field(default_factory=list)
    conns_server: list[int] = field(default_factory=list)
    conns_stats: list[int | None] = field(default_factory=list)
    cpu_us_per_op: list[float] = field(default_factory=list)
    server_cpu_us_per_op: list[float | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        v = self.ops_per_s
        out: dict[str, Any] = {
            "ops_per_s": v, "conns_server": self.conns_server, "conns_stats": self.conns_stats,
            "cpu_us_per_op": self.cpu_us_per_op,
            "server_cpu_us_per_op": self.server_cpu_us_per_op, "errors": self.errors,
        }
        if v:
            med_v = statistics.median(v)
            out.update(median=med_v, min=min(v), max=max(v), spread=(max(v) - min(v)) / med_v,
                       conns_server_max=max(self.conns_server),
                       cpu_us_per_op_median=statistics.median(self.cpu_us_per_op))
            st = [c for c in self.conns_stats if c is not None]
            out["conns_stats_max"] = max(st) if st else None
            sv = [c for c in self.server_cpu_us_per_op if c is not None]
            out["server_cpu_us_per_op_median"] = statistics.median(sv) if sv else None
        return out


def run_all(scs: list[Scenario], peers: list[str], reps: int, dsn: str, admin: Admin,
            postmaster: int | None, loop: str, pgbench_s: int,
            verbose: bool) -> tuple[dict[str, dict[str, Record]], list[dict[str, Any]]]:
    results = {sc.id: {c: Record() for c in peers} for sc in scs}
    ceiling: list[dict[str, Any]] = []
    total = reps * len(scs) * len(peers)
    done = 0
    t_start = time.monotonic()

    def log(msg: str) -> None:
        if verbose:
            print(f"[{time.monotonic() - t_start:5.0f}s] {msg}", file=sys.stderr, flush=True)

    for rep in range(reps):
        if pgbench_s > 0:
            c = pgbench_run(dsn, pgbench_s, postmaster)
            ceiling.append(c)
            log(f"rep {rep + 1} pgbench -S -c {POOL}: {c['tps']:,.0f} tps")
        for sc in scs:
            k = rep % len(peers)
            for client in peers[k:] + peers[:k]:
                rec = results[sc.id][client]
                done += 1
                try:
                    m = measure(sc, client, dsn, admin, postmaster, loop)
                except Exception as e:  # a peer failing is reported, not fatal
                    rec.errors.append(f"{type(e).__name__}: {e}")
                    log(f"[{done}/{total}] rep {rep + 1} {sc.id:10s} {client:9s} FAILED: {e}")
                    continue
                rec.ops_per_s.append(m.ops_per_s)
                rec.conns_server.append(m.conns_server)
                rec.conns_stats.append(m.conns_stats)
                rec.cpu_us_per_op.append(m.cpu_s * 1e6 / m.ops)
                rec.server_cpu_us_per_op.append(
                    None if m.server_cpu_s is None else m.server_cpu_s * 1e6 / m.ops)
                log(f"[{done}/{total}] rep {rep + 1} {sc.id:10s} {client:9s} "
                    f"{m.ops_per_s:>10,.0f} ops/s  conns={m.conns_server}"
                    + ("" if m.conns_stats is None else f" (stats {m.conns_stats})"))
    return results, ceiling


# ------------------------------------------------------------------ reporting
def main_table(scs: list[Scenario], peers: list[str],
               summ: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    others = [p for p in peers if p != "iokernel"]
    ratio_heads = [f"iokernel / {p}" for p in others] if "iokernel" in peers else []
    head = ("| scenario | " + " | ".join([*(f"{p} ops/s" for p in peers), *ratio_heads])
            + " | connections " + " / ".join(peers) + " | spread |")
    ncols = len(peers) + (len(others) if "iokernel" in peers else 0)
    out = [head, "|---|" + "--:|" * ncols + ":-:|--:|"]
    def conn(s: dict[str, dict[str, Any]], p: str) -> str:
        if "conns_server_max" not in s[p]:
            return "-"
        st = s[p].get("conns_stats_max")
        return f"{s[p]['conns_server_max']}" + ("" if st is None else f" ({st})")

    for sc in scs:
        s = summ[sc.id]
        meds = {p: s[p].get("median") for p in peers}
        cells = [fmt_ops(meds[p]) + (" rows" if sc.kind == "many" and meds[p] else "")
                 for p in peers]
        ratios = [ratio(meds["iokernel"], meds[p]) for p in others] if "iokernel" in peers else []

        spreads = [s[p]["spread"] for p in peers if "spread" in s[p]]
        out.append(f"| {sc.label} | " + " | ".join(cells)
                   + (" | " + " | ".join(ratios) if ratios else "")
                   + f" | {' / '.join(conn(s, p) for p in peers)} | "
                   + (f"{max(spreads) * 100:.0f}%" if spreads else "-") + " |")
    return out


def cpu_table(scs: list[Scenario], peers: list[str],
              summ: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    out = ["| scenario | " + " | ".join(peers) + " | server, with " + " / ".join(peers) + " |",
           "|---|" + "--:|" * len(peers) + ":-:|"]

    def f(v: float | None) -> str:
        return "-" if v is None else f"{v:.1f}"

    for sc in scs:
        s = summ[sc.id]
        out.append(f"| {sc.label} | "
                   + " | ".join(f(s[p].get("cpu_us_per_op_median")) for p in peers) + " | "
                   + " / ".join(f(s[p].get("server_cpu_us_per_op_median")) for p in peers)
                   + " |")
    return out


def goals(summ: dict[str, dict[str, dict[str, Any]]], ceiling_tps: float | None
          ) -> tuple[list[str], list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []

    def get(sid: str, peer: str, key: str = "median") -> Any:
        return summ.get(sid, {}).get(peer, {}).get(key)

    iok, apg = get("select-50", "iokernel"), get("select-50", "asyncpg")
    conns = get("select-50", "iokernel", "conns_server_max")
    if iok and apg:
        r = iok / apg
        items.append({"goal": "SELECT $1::int + 1 at 50 tasks: ≥ 5× asyncpg with ≤ 4 connections",
                      "measured": f"{r:.2f}×, {conns} connection(s)", "ratio": r,
                      "connections": conns, "met": r >= 5 and conns is not None and conns <= 4})
    iok, apg = get("many", "iokernel"), get("many", "asyncpg")
    if iok and apg:
        r = iok / apg
        items.append({"goal": "executemany of 10,000 rows: ≥ 1× asyncpg",
                      "measured": f"{r:.2f}×", "ratio": r, "met": r >= 1})
    iok = get("pk-50", "iokernel")
    if iok and ceiling_tps:
        frac = iok / ceiling_tps
        items.append({"goal": "primary-key lookups at 50 tasks: fraction of the pgbench ceiling "
                              "(reported, no target)",
                      "measured": f"{frac * 100:.0f}% ({fmt_ops(iok)} of {fmt_ops(ceiling_tps)})",
                      "ratio": frac, "met": None})
    out = ["| goal | measured | status |", "|---|--:|:-:|"]
    for g in items:
        status = "reported" if g["met"] is None else ("met" if g["met"] else "**missed**")
        out.append(f"| {g['goal']} | {g['measured']} | {status} |")
    return out, items


def ceiling_table(peers: list[str], summ: dict[str, dict[str, dict[str, Any]]],
                  ceiling: list[dict[str, Any]]) -> list[str]:
    if not ceiling:
        return []
    tps = statistics.median(c["tps"] for c in ceiling)
    out = [f"pgbench ceiling: `{ceiling[0]['command'].split(' -h ')[0]}` → median "
           f"**{fmt_ops(tps)} tps** over {len(ceiling)} runs "
           f"({', '.join(fmt_ops(c['tps']) for c in ceiling)}).", "",
           "| client | PK lookups/s, 50 tasks | fraction of the pgbench ceiling |",
           "|---|--:|--:|"]
    for p in peers:
        m = summ.get("pk-50", {}).get(p, {}).get("median")
        out.append(f"| {p} | {fmt_ops(m)} | " + ("-" if not m else f"{m / tps * 100:.0f}%") + " |")
    return out


def plot(scs: list[Scenario], peers: list[str], summ: dict[str, dict[str, dict[str, Any]]],
         ceiling_tps: float | None, path: Path, title: str) -> None:
    """Left: SELECT $1::int + 1 against concurrency; middle: PK lookups (with the
    pgbench ceiling); right: executemany rows/s."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {"iokernel": "tab:blue", "asyncpg": "tab:orange", "psycopg": "tab:green",
              "psqlpy": "tab:purple"}
    markers = {"iokernel": "o", "asyncpg": "s", "psycopg": "^", "psqlpy": "D"}
    fig, (ax, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 5.5), dpi=100,
                                       gridspec_kw={"width_ratios": [3, 1.4, 1.4]})
    sweep = [sc for sc in scs if sc.kind == "select"]
    for p in peers:
        pts = [(sc.conc, summ[sc.id][p]["median"]) for sc in sweep
               if summ[sc.id][p].get("median")]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker=markers.get(p, "."),
                    color=colors.get(p),
                    label=p + (" (its default: 2 connections)" if p == "iokernel"
                               else f" (pool of {POOL})"))
    if ceiling_tps:
        ax.axhline(ceiling_tps, color="gray", linestyle=":",
                   label=f"pgbench -S -M prepared -c {POOL} -j 2 (C, PK lookups)")
    if sweep:
        ax.set_xscale("log")
        ax.set_xticks([sc.conc for sc in sweep])
        ax.set_xticklabels([str(sc.conc) for sc in sweep])
    ax.set_yscale("log")
    ax.set_xlabel("concurrent asyncio tasks, one shared client or pool")
    ax.set_ylabel("queries/s (median)")
    ax.set_title(f"SELECT $1::int + 1 — {title}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)

    def bars(axis: Any, kind: str, what: str) -> None:
        sc = next((x for x in scs if x.kind == kind), None)
        if sc is None:
            axis.set_visible(False)
            return
        vals = [summ[sc.id][p].get("median") or 0 for p in peers]
        axis.bar(range(len(peers)), vals, color=[colors.get(p) for p in peers])
        axis.set_xticks(range(len(peers)))
        axis.set_xticklabels(peers, fontsize=8, rotation=20)
        for i, v in enumerate(vals):
            axis.annotate(fmt_ops(v), (i, v), ha="center", va="bottom", fontsize=7)
        if kind == "pk" and ceiling_tps:
            axis.axhline(ceiling_tps, color="gray", linestyle=":", label="pgbench ceiling")
            axis.legend(fontsize=7, loc="upper right")
        axis.set_title(f"{sc.label}\n({what}, median)", fontsize=9)
        axis.grid(True, axis="y", alpha=0.3)

    bars(ax2, "pk", "lookups/s")
    bars(ax3, "many", "rows/s")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def environment(dsn: str, how: str, admin: Admin) -> dict[str, Any]:
    settings = ("fsync", "synchronous_commit", "shared_buffers", "max_connections")
    return common.environment(
        how, ("iokernel", "asyncpg", "psycopg", "psycopg-binary", "psycopg-pool", "psqlpy",
              "uvloop"),
        postgres=admin.version(),
        server_settings={k: admin.sql(f"SHOW {k}")[0][0] for k in settings})


def available_peers(wanted: list[str]) -> tuple[list[str], dict[str, str]]:
    ok, missing = [], {}
    modules = {"iokernel": "iokernel.pg", "asyncpg": "asyncpg", "psycopg": "psycopg_pool",
               "psqlpy": "psqlpy"}
    for p in wanted:
        try:
            __import__(modules[p])
            ok.append(p)
        except ImportError as e:
            missing[p] = str(e)
    return ok, missing


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="~1 min: fewer ops, 3 reps, pgbench -T 5")
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 3)")
    ap.add_argument("--scale", type=float, default=None,
                    help="multiply every scenario's op count (default 1, quick 0.3)")
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma list of {', '.join(PEERS)}")
    ap.add_argument("--only", default=None, help="substring filter on scenario ids")
    ap.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    ap.add_argument("--pgbench-seconds", type=int, default=None,
                    help="pgbench -T per repetition (default 10, quick 5; 0: no ceiling)")
    ap.add_argument("--out", default=None, help="JSON (default bench/results/pg-latest.json)")
    ap.add_argument("--plot", default=None, help="PNG (default docs/img/bench-pg.png)")
    ap.add_argument("--from-json", default=None, metavar="JSON",
                    help="no run: rewrite the report (.md next to it) and the plot from results")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    if args.from_json:
        src = Path(args.from_json)
        render(json.loads(src.read_text()), src.with_suffix(".md"),
               Path(args.plot) if args.plot else ROOT / "docs" / "img" / "bench-pg.png")
        return 0

    reps = args.reps or (3 if args.quick else 5)
    scale = args.scale or (0.3 if args.quick else 1.0)
    pgbench_s = args.pgbench_seconds if args.pgbench_seconds is not None else (
        5 if args.quick else 10)
    peers, missing = available_peers([p.strip() for p in args.peers.split(",") if p.strip()])
    for p, why in missing.items():
        print(f"# peer {p} unavailable: {why}", file=sys.stderr)
    if not peers:
        ap.error("no peer available")
    scs = scenarios(scale)
    if args.only:
        scs = [s for s in scs if args.only in s.id]
        if not scs:
            ap.error(f"--only {args.only!r} matches no scenario")
    name = "pg-quick" if args.quick else "pg-latest"
    out = Path(args.out) if args.out else HERE / "results" / f"{name}.json"
    png = Path(args.plot) if args.plot else (
        HERE / "results" / "pg-quick.png" if args.quick else ROOT / "docs" / "img" / "bench-pg.png")
    command = "python bench/pg_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)

    with pg_server() as (dsn, how, postmaster, _srv):
        admin = Admin(dsn)
        try:
            t_init = pgbench_init(dsn)
            admin.sql("DROP TABLE IF EXISTS bench_many")
            admin.sql("CREATE UNLOGGED TABLE bench_many (a int, b text, c float8)")
            admin.sql("VACUUM ANALYZE")
            env = environment(dsn, how, admin)
            env["pgbench_init_s"] = round(t_init, 1)
            env["loop"] = args.loop
            env["peers_missing"] = missing
            print(f"# {command.strip()}\n# {how}; PostgreSQL {env['postgres']}; "
                  f"{env['cpus']} CPUs; {reps} reps; pgbench -i -s {SCALE} took {t_init:.1f}s; "
                  f"load {env['loadavg_start']}", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            results, ceiling = run_all(scs, peers, reps, dsn, admin, postmaster, args.loop, pgbench_s,
                                       verbose=not args.quiet)
            env["elapsed_s"] = round(time.monotonic() - t0, 1)
            env["loadavg_end"] = os.getloadavg()
        finally:
            admin.close()

    summ = {sid: {p: rec.summary() for p, rec in recs.items()} for sid, recs in results.items()}
    ceiling_tps = statistics.median(c["tps"] for c in ceiling) if ceiling else None
    data = {
        "command": command.strip(), "reps": reps, "scale": scale, "environment": env,
        "pool_size": POOL, "peers": peers, "ceiling": ceiling, "ceiling_tps_median": ceiling_tps,
        "scenarios": [{"id": s.id, "scenario": s.label, "kind": s.kind, "concurrency": s.conc,
                       "ops": s.ops, "clients": summ[s.id]} for s in scs],
        "goals": goals(summ, ceiling_tps)[1],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    render(data, out.with_suffix(".md"), png)
    print(f"results: {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}",
          file=sys.stderr)
    return 0


def render(data: dict[str, Any], md_path: Path, png: Path) -> str:
    """The markdown report and the plot, from the JSON results."""
    env = data["environment"]
    scs = [Scenario(s["id"], s["scenario"], s["kind"], s["concurrency"], s["ops"])
           for s in data["scenarios"]]
    summ = {s["id"]: s["clients"] for s in data["scenarios"]}
    peers = data.get("peers") or list(data["scenarios"][0]["clients"])
    ceiling = data["ceiling"]
    ceiling_tps = data["ceiling_tps_median"]
    missing = env.get("peers_missing") or {}
    gtable, _ = goals(summ, ceiling_tps)
    errors = [f"{sid} / {p}: {e}" for sid, recs in summ.items() for p, s in recs.items()
              for e in s["errors"]]
    report = [
        (f"Command: `{data['command']}` — {data['reps']} repetitions, interleaved; median "
         f"ops/s ({env['loop']} loop). {env['cpus']} CPUs ({env['cpu_model']}), Python "
         f"{env['python']}, PostgreSQL {env['postgres']} (fsync off), run took "
         f"{env['elapsed_s']} s, load average {env['loadavg_start'][0]:.2f} → "
         f"{env['loadavg_end'][0]:.2f}."),
        "",
        *main_table(scs, peers, summ),
        "",
        ("Connections: max seen in pg_stat_activity (by application_name, sampled every 50 ms "
         "while timed); iokernel's own `stats()` in parentheses. Peers use pools of "
         f"{data['pool_size']}. Spread: (max − min) / median over repetitions, worst client "
         "of the row."),
        "",
        *ceiling_table(peers, summ, ceiling),
        "",
        ("CPU time per operation (per row for executemany), µs, median: the benchmark process "
         "(all threads), and the PostgreSQL server (all its processes):"),
        "",
        *cpu_table(scs, peers, summ),
        "",
        "Goals:", "", *gtable, "",
    ]
    if missing:
        report += [f"Peers not run: {', '.join(f'{p} ({w})' for p, w in missing.items())}", ""]
    if errors:
        report += ["Failed measurements:", "", *[f"* {e}" for e in errors], ""]
    text = "\n".join(report)
    print(text)
    md_path.write_text(text + "\n")
    plot(scs, peers, summ, ceiling_tps, png,
         f"PostgreSQL {env['postgres'].split(' ')[0]} on loopback, {env['cpus']} CPUs, "
         f"median of {data['reps']}")
    print(f"plot: {png.relative_to(ROOT) if png.is_relative_to(ROOT) else png}", file=sys.stderr)
    return text


if __name__ == "__main__":
    sys.exit(main())

