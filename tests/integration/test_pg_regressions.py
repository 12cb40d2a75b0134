"""PostgreSQL problems found and fixed, kept as regressions: leaked connections
on a cancelled transaction start, more transactions than server connections,
timeouts inside transactions and next to neighbours, and the out-of-band
cancel race (see also tests/faults/test_pg_cancel_race.py).

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); side effects are checked with psql
(``pg_server.sql``), never with the client under test.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.integration.pg_driver import MODES, Driver, aclose, make, new_app
from tests.servers import PostgresServer


# ------------------------------------------------ problems found and fixed: kept as regressions
def test_cancelled_transaction_start_does_not_leak_connections(
    fresh_pg_server: PostgresServer,
) -> None:
    pg_server = fresh_pg_server
    app = new_app("lease")
    db = pg.AsyncClient(pg_server.dsn(application_name=app), timeout=10.0)

    async def tx() -> None:
        async with db.transaction() as t:
            await t.fetchval("SELECT 1")

    async def main() -> None:
        await db.fetchval("SELECT 1")
        base = pg_server.connections(app)
        tasks = [asyncio.create_task(tx()) for _ in range(20)]
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        deadline = time.monotonic() + 30
        while db.stats()["dedicated_connections"] > 0 or pg_server.connections(app) > base:
            assert time.monotonic() < deadline, (
                f"{db.stats()['dedicated_connections']} dedicated connections left, "
                f"{pg_server.connections(app)} on the server (base {base})")
            await asyncio.sleep(0.1)
        await aclose(db)

    asyncio.run(main())


@pytest.mark.parametrize("mode", MODES)
async def test_more_concurrent_transactions_than_server_connections(
    pg_server: PostgresServer, pg_dsn: str, mode: str
) -> None:
    # The transactions wait their turn for a connection (150 x 0.5 s over a
    # few connections): a timeout generous enough for a loaded machine, since
    # what is asserted is that none fails, not how fast they go.
    db = Driver(make(pg_server.dsn(application_name=new_app("many-tx")), mode == "async",
                     timeout=300.0), mode == "async")

    def job(i: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            async with db.transaction() as tx:
                # long enough that, without a limit, all 150 are open at once
                await tx.fetchval("SELECT pg_sleep(0.5)")
                return await tx.fetchval("SELECT $1::int", i)

        return run

    results = await db.concurrently([job(i) for i in range(150)])
    await db.close()
    assert results == list(range(150)), [r for r in results if not isinstance(r, int)][:3]


async def test_timeout_inside_transaction_is_what_the_block_raises(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    with pytest.raises(iokernel.TimeoutError):
        async with db.transaction() as tx:
            await tx.execute(f"INSERT INTO {table} (id) VALUES (1)")
            await tx.fetchval("SELECT pg_sleep(3)", timeout=0.2)
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"
    async with db.transaction() as tx:
        assert await tx.fetchval("SELECT pg_current_xact_id_if_assigned()") is None


@pytest.mark.parametrize("mode", MODES)
async def test_timed_out_query_does_not_fail_its_neighbours(pg_server: PostgresServer,
                                                           pg_dsn: str, mode: str) -> None:
    """One connection, so every fast query is pipelined behind the slow one."""
    db = Driver(make(pg_server.dsn(application_name=new_app("hol")), mode == "async",
                     timeout=10.0, connections=1), mode == "async")
    await db.fetchval("SELECT 1")

    async def slow() -> Any:
        return await db.fetchval("SELECT pg_sleep(5)", timeout=0.3)

    def fast(i: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            await asyncio.sleep(0.05) if db.is_async else time.sleep(0.05)
            return await db.fetchval("SELECT $1::int", i)

        return run

    try:
        t0 = time.monotonic()
        results = await db.concurrently([slow, *(fast(i) for i in range(20))])
        assert isinstance(results[0], iokernel.TimeoutError), results[0]
        assert results[1:] == list(range(20)), [
            r for r in results[1:] if not isinstance(r, int)][:2]
        assert time.monotonic() - t0 < 3
    finally:
        await db.close()


# ------------------------------- the cancel race (see tests/faults/test_pg_cancel_race.py)
def test_out_of_band_cancel_never_lands_on_the_next_query(pg_server: PostgresServer,
                                                          pg_dsn: str) -> None:
    """Sweep how long the overdue query runs across the moment the kernel's cancel
    arrives (2 ms steps); the queries pipelined right behind it must always get
    their own rows. (The race shows only sometimes here; the relay test in
    tests/faults makes it certain.)"""
    db = pg.AsyncClient(pg_server.dsn(application_name=new_app("race")), timeout=30.0,
                        connections=1)

    async def main() -> list[str]:
        await db.fetchval("SELECT 1")
        hit: list[str] = []
        for ms in range(280, 362, 2):  # the kernel cancels at timeout + 250 ms of silence
            slow = asyncio.ensure_future(
                db.fetchval("SELECT pg_sleep($1::float8)", ms / 1000, timeout=0.05))
            await asyncio.sleep(0.001)
            nexts = [asyncio.ensure_future(db.fetchval("SELECT $1::int, pg_sleep(0.002)", i))
                     for i in range(3)]
            res = await asyncio.gather(slow, *nexts, return_exceptions=True)
            assert isinstance(res[0], iokernel.TimeoutError), res[0]
            hit += [f"{ms} ms: {r!r}" for i, r in enumerate(res[1:]) if r != i]
        await aclose(db)
        return hit

    hit = asyncio.run(main())
    assert not hit, hit[:5]


async def test_concurrent_callers_of_a_failing_statement_each_get_its_error(pg_dsn: str) -> None:
    """Found by the soak: callers of the same new statement pipelined behind
    its failing Parse got 26000 ("prepared statement does not exist") instead
    of the statement's own error. Each now gets 42P01."""
    db = pg.AsyncClient(pg_dsn, connections=1)
    try:
        for sql in ("SELECT * FROM no_such_table_a", "SELECT * FROM no_such_table_b WHERE x = $1"):
            args = (1,) if "$1" in sql else ()
            got = await asyncio.gather(*[db.fetch(sql, *args) for _ in range(10)],
                                       return_exceptions=True)
            codes = [getattr(e, "sqlstate", None) for e in got]
            assert codes == ["42P01"] * 10, codes
        # A good statement sent by many at once is still prepared once and works.
        vals = await asyncio.gather(*[db.fetchval("SELECT $1::int + 1", i) for i in range(50)])
        assert vals == [i + 1 for i in range(50)]
    finally:
        await db.close()
