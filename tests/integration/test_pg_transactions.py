"""PostgreSQL transactions: commit, rollback on exception, nested blocks as
savepoints, and concurrent transactions with queries outside any block never
landing inside one.

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); side effects are checked with psql
(``pg_server.sql``), never with the client under test.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from iokernel import pg
from tests.integration.pg_driver import Driver
from tests.servers import PostgresServer


# ----------------------------------------------------------------- transactions
async def test_transaction_commits(db: Driver, table: str, pg_server: PostgresServer) -> None:
    t = table
    async with db.transaction() as tx:
        assert await tx.execute(f"INSERT INTO {t} VALUES (1, 'a', 1)") == "INSERT 0 1"
        assert await tx.execute(f"INSERT INTO {t} VALUES ($1, $2, $3)", 2, "b", 2) == "INSERT 0 1"
        await tx.executemany(f"INSERT INTO {t} VALUES ($1, $2, $3)", [(3, "c", 3), (4, "d", 4)])
        assert await tx.fetchval(f"SELECT count(*) FROM {t}") == 4
        assert [tuple(r) for r in await tx.fetch(f"SELECT id, v FROM {t} ORDER BY id")] == [
            (1, "a"), (2, "b"), (3, "c"), (4, "d")
        ]
        assert await tx.fetchrow(f"SELECT v FROM {t} WHERE id = $1", 3) == ("c",)
        tx_pid = await tx.fetchval("SELECT pg_backend_pid()")
        assert await tx.fetchval("SELECT pg_current_xact_id_if_assigned()::text") is not None
        # Not visible outside before the commit: not to psql, not to the client itself,
        # whose other queries never run inside this transaction.
        assert pg_server.sql(f"SELECT count(*) FROM {t}") == "0"
        assert await db.fetchval(f"SELECT count(*) FROM {t}") == 0
        assert await db.fetchval("SELECT pg_current_xact_id_if_assigned()") is None
        assert await db.fetchval("SELECT pg_backend_pid()") != tx_pid
    assert pg_server.sql(f"SELECT count(*) FROM {t}") == "4"
    assert await db.fetchval(f"SELECT count(*) FROM {t}") == 4


async def test_transaction_rolls_back_on_exception(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    t = table

    class Boom(Exception):
        pass

    with pytest.raises(Boom):
        async with db.transaction() as tx:
            await tx.execute(f"INSERT INTO {t} VALUES (1, 'a', 1)")
            raise Boom
    assert pg_server.sql(f"SELECT count(*) FROM {t}") == "0"

    with pytest.raises(pg.PostgresError) as ei:
        async with db.transaction() as tx:
            await tx.execute(f"INSERT INTO {t} VALUES (1, 'a', 1)")
            await tx.fetchval("SELECT 1/0")
    assert ei.value.sqlstate == "22012"
    assert pg_server.sql(f"SELECT count(*) FROM {t}") == "0"

    # the dedicated connection went back clean: the next transaction works
    async with db.transaction() as tx:
        assert await tx.fetchval("SELECT pg_current_xact_id_if_assigned()") is None
        await tx.execute(f"INSERT INTO {t} VALUES (2, 'b', 2)")
    assert pg_server.sql(f"SELECT id FROM {t}") == "2"
    assert await db.fetchval("SELECT 1") == 1


async def test_nested_transactions_are_savepoints(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    t = table

    class Boom(Exception):
        pass

    async with db.transaction() as tx:
        await tx.execute(f"INSERT INTO {t} VALUES (1, 'a', 1)")
        with pytest.raises(Boom):
            async with tx.transaction():
                await tx.execute(f"INSERT INTO {t} VALUES (2, 'b', 2)")
                raise Boom
        async with tx.transaction():
            await tx.execute(f"INSERT INTO {t} VALUES (3, 'c', 3)")
            async with tx.transaction():
                await tx.execute(f"INSERT INTO {t} VALUES (4, 'd', 4)")
            with pytest.raises(Boom):
                async with tx.transaction():
                    await tx.execute(f"INSERT INTO {t} VALUES (5, 'e', 5)")
                    raise Boom
        # a failed statement inside a savepoint rolls back to it; the outer block goes on
        with pytest.raises(pg.PostgresError) as ei:
            async with tx.transaction():
                await tx.execute(f"INSERT INTO {t} VALUES (6, 'f', 6)")
                await tx.execute(f"INSERT INTO {t} VALUES (1, 'dup', 1)")
        assert ei.value.sqlstate == "23505"
        assert await tx.fetchval(f"SELECT string_agg(id::text, ',' ORDER BY id) FROM {t}") == (
            "1,3,4"
        )
        assert pg_server.sql(f"SELECT count(*) FROM {t}") == "0"
    assert pg_server.sql(f"SELECT string_agg(id::text, ',' ORDER BY id) FROM {t}") == "1,3,4"


async def test_concurrent_transactions_and_outside_queries(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    """Transactions on their own connections; queries outside any block, run
    while every transaction has written and none has ended, never land
    inside one and see none of their rows."""
    t = table
    # The transactions stay open until the outside queries are done, and
    # those start once every transaction has written: nothing is committed
    # while they run, however the jobs are scheduled.
    inserted, outside_done = _Countdown(8), _Countdown(40)

    async def wait_for(c: _Countdown) -> None:
        deadline = time.monotonic() + 60
        while not c.done.is_set():
            assert time.monotonic() < deadline, "a job never got there"
            if db.is_async:
                await asyncio.sleep(0.005)
            else:
                c.done.wait(0.1)

    def tx_job(i: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            try:
                async with db.transaction() as tx:
                    pid = await tx.fetchval("SELECT pg_backend_pid()")
                    await tx.execute(f"INSERT INTO {t} VALUES ($1, 'tx', $2)", i, pid)
                    inserted.tick()
                    await wait_for(outside_done)
                    assert await tx.fetchval(f"SELECT n FROM {t} WHERE id = $1", i) == pid
                    if i % 2:
                        raise KeyError(i)
            except KeyError:
                return "rolled back"
            return "committed"

        return run

    def outside_job(i: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            await wait_for(inserted)
            try:
                row = await db.fetchrow(
                    "SELECT pg_current_xact_id_if_assigned() IS NULL AS clean, "
                    f"(SELECT count(*) FROM {t}) AS visible, $1::int AS i",
                    i,
                )
            finally:
                outside_done.tick()
            assert row is not None and row["i"] == i
            return (row["clean"], row["visible"])

        return run

    jobs = [tx_job(i) for i in range(8)] + [outside_job(i) for i in range(40)]
    results = await db.concurrently(jobs)
    assert results[:8] == ["committed", "rolled back"] * 4, results[:8]
    for clean, visible in results[8:]:
        assert clean is True
        assert visible == 0  # nothing uncommitted is ever seen outside
    assert pg_server.sql(f"SELECT string_agg(id::text, ',' ORDER BY id) FROM {t}") == "0,2,4,6"


class _Countdown:
    """Set `done` once tick() was called n times (from any thread or task)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.lock = threading.Lock()
        self.done = threading.Event()

    def tick(self) -> None:
        with self.lock:
            self.n -= 1
            if self.n <= 0:
                self.done.set()
