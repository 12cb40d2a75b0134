"""The PostgreSQL cases of bench/pg_bench.py: the scenarios, the peers (one
``Client`` class each, opened per measurement), the benchmark's own admin
connection (setup, connection counts in pg_stat_activity, sampled while a run
is timed), and one measurement: open a fresh client with its own
``application_name``, warm it up at full concurrency (checking its answers),
time the ops with ``measuring.Clock`` (this process's CPU; the server's from
/proc when it was started here), count its connections, close it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import measuring
from measuring import Measurement

PEERS = ("iokernel", "asyncpg", "psycopg", "psqlpy")
FLOOR = "floor"  # bench/pg_floor.py: an extra client of the executemany scenario only
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

    async def before_timed_many(self, sql: tuple[str, str],
                                batches: list[list[tuple[Any, ...]]]) -> None:
        """Whatever this client does ahead of the timed executemany calls (the floor:
        encode them)."""

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


class FloorClient(Client):
    """bench/pg_floor.py: the cheapest possible client, for executemany only."""

    name = FLOOR

    async def open(self, dsn: str, app: str) -> None:
        from pg_floor import FLOAT8, INT4, TEXT, FloorConnection

        self.conn = FloorConnection()
        self.types = (INT4, TEXT, FLOAT8)  # bench_many (a int, b text, c float8)
        self.encoded: dict[int, bytes] = {}
        await self.conn.connect(dsn, app)

    async def val(self, sql: tuple[str, str], arg: int) -> Any:
        raise NotImplementedError("the floor client only does executemany")

    async def many(self, sql: tuple[str, str], rows: list[tuple[Any, ...]]) -> None:
        if not self.conn.statement:
            await self.conn.prepare(sql[0], self.types)
        data = self.encoded.pop(id(rows), None)
        await self.conn.send(self.conn.encode(rows) if data is None else data, len(rows))

    async def before_timed_many(self, sql: tuple[str, str],
                                batches: list[list[tuple[Any, ...]]]) -> None:
        if not self.conn.statement:
            await self.conn.prepare(sql[0], self.types)
        self.encoded = {id(b): self.conn.encode(b) for b in batches}

    async def close(self) -> None:
        self.conn.close()


CLIENTS: dict[str, type[Client]] = {
    c.name: c for c in (IokernelClient, AsyncpgClient, PsycopgClient, PsqlpyClient, FloorClient)
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
            await client.before_timed_many(SQL_MANY, batches)

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

        clock = measuring.Clock(lambda: measuring.process_tree_cpu(postmaster))
        with ConnSampler(admin, app) as sampler:
            clock.start()
            await timed()
            clock.stop()
        if sc.kind == "many":
            got_rows = admin.sql("SELECT count(*) FROM bench_many")[0][0]
            if got_rows != sc.ops:
                raise AssertionError(f"{client_name}: executemany left {got_rows} rows, not {sc.ops}")
        m = clock.measurement(sc.ops)
        m.conns_server = sampler.max
        m.conns_stats = client.stats_connections()
        return m
    finally:
        await client.close()


def measure(sc: Scenario, client: str, dsn: str, admin: Admin, postmaster: int | None,
            loop: str) -> Measurement:
    coro = _measure(sc, client, dsn, admin, postmaster)
    if loop == "uvloop":
        import uvloop

        return uvloop.run(coro)  # type: ignore[no-any-return]
    return asyncio.run(coro)


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
