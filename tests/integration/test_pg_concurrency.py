"""PostgreSQL clients under concurrency: many threads on one blocking client,
cancellation and timeout storms that must never misroute a reply, timeouts
that never cancel another caller's query, and uvloop.

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); side effects are checked with psql
(``pg_server.sql``), never with the client under test.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.integration.pg_driver import MODES, Driver, aclose, make, new_app
from tests.servers import PostgresServer


# ---------------------------------------------------------------- concurrency
def test_many_threads_share_one_blocking_client(pg_server: PostgresServer, pg_dsn: str,
                                                table: str) -> None:
    app = new_app("threads")
    c = pg.Client(pg_server.dsn(application_name=app), timeout=30.0)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            for j in range(150):
                v = n * 10_000 + j
                assert c.fetchval("SELECT $1::int", v) == v
                row = c.fetchrow("SELECT $1::int AS a, $2::text AS b", v, str(v))
                assert row is not None and tuple(row) == (v, str(v))
                if j % 50 == 0:
                    assert c.execute(f"INSERT INTO {table} (id, n) VALUES ($1, $2)", v, n) == (
                        "INSERT 0 1"
                    )
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(32)]
    for t in threads:
        t.start()
    peak = 0
    while any(t.is_alive() for t in threads):
        peak = max(peak, pg_server.connections(app))
        time.sleep(0.05)
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert pg_server.sql(f"SELECT count(*), count(DISTINCT n) FROM {table}") == "96|32"
    assert peak <= 4, f"{peak} connections for 32 threads"
    c.close()


def test_cancellation_storm_never_misroutes(pg_server: PostgresServer, pg_dsn: str) -> None:
    """Thousands of tasks cancelled at random points; every row that does arrive
    is the caller's own; afterwards the client is still in step."""
    rng = random.Random(4321)
    app = new_app("storm")
    db = pg.AsyncClient(pg_server.dsn(application_name=app), timeout=60.0)
    completed = 0

    async def worker(i: int) -> None:
        nonlocal completed
        for j in range(4):
            v = i * 10 + j
            assert await db.fetchval("SELECT $1::int", v) == v
            row = await db.fetchrow("SELECT $1::int AS a, $2::text AS b", v, f"s{v}")
            assert row is not None and tuple(row) == (v, f"s{v}")
            rows = await db.fetch("SELECT $1::int + g FROM generate_series(0, 2) g", v)
            assert [r[0] for r in rows] == [v, v + 1, v + 2]
            completed += 1

    async def main() -> None:
        tasks = [asyncio.create_task(worker(i)) for i in range(3000)]
        for _ in range(60):
            await asyncio.sleep(0)
            for t in rng.sample(tasks, 50):
                t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        bad = [r for r in results if not isinstance(r, (type(None), asyncio.CancelledError))]
        assert not bad, bad[:3]
        n_cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
        assert 0 < n_cancelled < 3000
        assert completed > 0
        # still in step, and a fresh burst is fully correct
        got = await asyncio.gather(*(db.fetchval("SELECT $1::int * 2", i) for i in range(500)))
        assert got == [i * 2 for i in range(500)]
        assert pg_server.connections(app) <= 4
        await aclose(db)

    asyncio.run(main())


def test_timeout_storm_never_misroutes(pg_server: PostgresServer, pg_dsn: str) -> None:
    """Blocking callers with a short timeout and queries of random length: each
    caller gets its own value or TimeoutError, never another caller's row."""
    app = new_app("tstorm")
    c = pg.Client(pg_server.dsn(application_name=app), timeout=0.3)
    errors: list[BaseException] = []
    timeouts = 0
    lock = threading.Lock()

    def run(n: int) -> None:
        nonlocal timeouts
        rng = random.Random(n)
        for j in range(20):
            v = n * 1000 + j
            delay = rng.choice([0, 0, 0, 0.01, 0.05, 0.5])
            try:
                got = c.fetchrow("SELECT $1::int, pg_sleep($2::float8)::text", v, delay)
                assert got is not None and got[0] == v, (v, got)
            except iokernel.TimeoutError:
                with lock:
                    timeouts += 1
            except BaseException as e:
                errors.append(e)
                return

    threads = [threading.Thread(target=run, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert not errors, errors[:3]
    assert timeouts > 0
    # The same connections are still in step once the backlog of sleeps (which
    # the server still runs after their callers timed out) has drained.
    for i in range(50):
        assert c.fetchval("SELECT $1::int", i, timeout=60) == i
    c.close()


@pytest.mark.parametrize("mode", MODES)
async def test_timeouts_never_cancel_another_callers_query(pg_server: PostgresServer,
                                                           pg_dsn: str, mode: str) -> None:
    """One pipelined connection; every other query times out. Whatever the client
    does about a timed-out query (wait it out, reset, or a CancelRequest, which
    cancels whatever the backend runs *when it arrives*), the fast queries pipelined
    next to it must get their own rows, never 57014 'canceling statement'."""
    d = Driver(make(pg_server.dsn(application_name=new_app("cancel")), mode == "async",
                    timeout=30.0, connections=1), mode == "async")

    def job(i: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            if i % 2:
                return await d.fetchval("SELECT $1::int, pg_sleep(0.03)", i, timeout=0.01)
            return await d.fetchval("SELECT $1::int", i)

        return run

    try:
        for _ in range(3):
            results = await d.concurrently([job(i) for i in range(60)])
            for i, r in enumerate(results):
                if i % 2:
                    assert r == i or isinstance(r, iokernel.TimeoutError), (i, r)
                else:
                    assert r == i, (i, r)
    finally:
        await d.close()


def test_uvloop(pg_server: PostgresServer, pg_dsn: str) -> None:
    uvloop = pytest.importorskip("uvloop")
    db = pg.AsyncClient(pg_dsn)

    async def main() -> list[Any]:
        got = list(await asyncio.gather(*(db.fetchval("SELECT $1::int", i) for i in range(1000))))
        await aclose(db)
        return got

    assert uvloop.run(main()) == list(range(1000))
