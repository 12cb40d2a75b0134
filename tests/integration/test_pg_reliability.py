"""PostgreSQL replies that used to cost more than their own request: a
message over ``max_message_size`` (fails alone, the connection serves the
queries pipelined with it) and statements cached before a schema change
(prepared afresh and sent again outside a transaction, a clear error inside
one).

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); side effects are checked with psql.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.integration.pg_driver import MODES, Driver, make, new_app
from tests.servers import PostgresServer

BIG = "SELECT repeat('x', 3000000), $1::int"
SMALL = "SELECT $1::int, repeat('y', 1000)"


@pytest.fixture
def one_conn(request: pytest.FixtureRequest, pg_server: PostgresServer,
             pg_dsn: str) -> Iterator[Driver]:
    """A client with one shared connection and a 1 MiB message limit."""
    is_async = request.param == "async"
    app = new_app("rel")
    client = make(pg_server.dsn(application_name=app), is_async, timeout=30.0,
                  connections=1, max_message_size=1 << 20)
    yield Driver(client, is_async, app)
    if not is_async:
        client.close()


@pytest.mark.parametrize("one_conn", MODES, indirect=True)
async def test_an_oversized_row_fails_alone_among_40_pipelined(one_conn: Driver) -> None:
    db = one_conn
    assert await db.fetchval("SELECT 1") == 1
    lost = db.client.stats()["disconnects"]
    jobs: list[Any] = [(lambda i=i: db.fetchrow(SMALL, i)) for i in range(20)]
    jobs.append(lambda: db.fetchrow(BIG, 99))
    jobs += [(lambda i=i: db.fetchrow(SMALL, i)) for i in range(20, 40)]
    got = await db.concurrently(jobs)
    big = got.pop(20)
    assert isinstance(big, iokernel.ResponseTooLargeError), big
    assert big.option == "max_message_size" and "max_message_size" in str(big)
    assert "3000" in str(big) and "discarded" in str(big)
    assert [tuple(r) for r in got] == [(i, "y" * 1000) for i in range(40)]
    # The same connection goes on: nothing was reset.
    assert await db.fetchval("SELECT 7") == 7
    assert db.client.stats()["disconnects"] == lost
    assert db.client.stats()["connections"] == 1


@pytest.mark.parametrize("one_conn", MODES, indirect=True)
async def test_oversized_rows_in_a_big_result_and_an_oversized_error(one_conn: Driver) -> None:
    db = one_conn
    with pytest.raises(iokernel.ResponseTooLargeError):
        await db.fetch("SELECT CASE WHEN g = 500 THEN repeat('x', 2000000) ELSE 'a' END "
                       "FROM generate_series(1, 1000) g")
    with pytest.raises(iokernel.ResponseTooLargeError, match="error message"):
        await db.execute("DO $$BEGIN RAISE EXCEPTION '%', repeat('e', 2000000); END$$")
    assert await db.fetchval("SELECT $1::text", "ok") == "ok"
    assert db.client.stats()["disconnects"] == 0


def test_max_message_size_option_is_checked(pg_dsn: str) -> None:
    for bad in (0, 10, -1, 2**31):
        with pytest.raises(ValueError, match="max_message_size"):
            pg.Client(pg_dsn, max_message_size=bad)
    with pytest.raises(TypeError, match="max_message_size"):
        pg.Client(pg_dsn, max_message_size=1.5)


def _t() -> str:
    return f"s_{uuid.uuid4().hex[:10]}"


@pytest.mark.parametrize("mode", MODES)
async def test_schema_change_reprepares_cached_statements(
    pg_server: PostgresServer, pg_dsn: str, mode: str
) -> None:
    """Drop and re-create a table with other column types: the cached SELECT
    (0A000) and the cached INSERT (its parameter was typed boolean) are
    prepared afresh and sent again; the caller sees no error."""
    t = _t()
    db = Driver(make(pg_dsn, mode == "async", connections=1, timeout=30.0), mode == "async")
    try:
        pg_server.sql(f"CREATE TABLE {t} (a boolean)")
        ins = f"INSERT INTO {t} (a) VALUES ($1)"
        for _ in range(3):
            await db.execute(ins, True)
            rows = await db.fetch(f"SELECT * FROM {t}")
            assert {tuple(r) for r in rows} == {(True,)}
        pg_server.sql(f"DROP TABLE {t}; CREATE TABLE {t} (a int)")
        assert await db.execute(ins, 5) == "INSERT 0 1"
        assert [tuple(r) for r in await db.fetch(f"SELECT * FROM {t}")] == [(5,)]
        pg_server.sql(f"ALTER TABLE {t} ALTER COLUMN a TYPE text")
        # many callers of the stale statement at once: each gets its answer
        got = await db.concurrently([lambda: db.fetch(f"SELECT * FROM {t}")] * 20)
        assert all([tuple(r) for r in g] == [("5",)] for g in got), got
        assert pg_server.sql(f"SELECT a FROM {t}") == "5"
        # the stale statements were closed on the server, not leaked
        names = await db.fetchval("SELECT count(*) FROM pg_prepared_statements")
        assert names <= 3, names
    finally:
        await db.close()
        pg_server.sql(f"DROP TABLE IF EXISTS {t}")


async def test_schema_change_inside_a_transaction_is_a_clear_error(
    db: Driver, pg_server: PostgresServer
) -> None:
    t = _t()
    pg_server.sql(f"CREATE TABLE {t} (a int); INSERT INTO {t} VALUES (1)")
    try:
        with pytest.raises(pg.PostgresError) as ei:
            async with db.transaction() as tx:
                assert await tx.fetchval(f"SELECT a FROM {t}") == 1
                await tx.execute(f"ALTER TABLE {t} ALTER COLUMN a TYPE text")
                await tx.fetchval(f"SELECT a FROM {t}")
        assert ei.value.sqlstate == "0A000"
        assert "run the transaction again" in str(ei.value)
        # rolled back; outside the transaction all is well
        assert await db.fetchval(f"SELECT a FROM {t}") == 1
    finally:
        pg_server.sql(f"DROP TABLE IF EXISTS {t}")


async def test_a_real_error_on_a_cached_statement_is_still_raised(db: Driver) -> None:
    sql = "SELECT 10 / $1::int"
    assert await db.fetchval(sql, 5) == 2
    with pytest.raises(pg.PostgresError) as ei:
        await db.fetchval(sql, 0)
    assert ei.value.sqlstate == "22012"
    assert await db.fetchval(sql, 2) == 5


def test_blocking_threads_share_one_connection_with_an_oversized_row(pg_dsn: str) -> None:
    db = pg.Client(pg_dsn, connections=1, max_message_size=1 << 20)

    def one(i: int) -> Any:
        try:
            return db.fetchval(BIG if i == 5 else "SELECT $1::int", i)
        except iokernel.Error as e:
            return e

    with ThreadPoolExecutor(8) as ex:
        got = list(ex.map(one, range(40)))
    assert isinstance(got[5], iokernel.ResponseTooLargeError)
    assert [g for i, g in enumerate(got) if i != 5] == [i for i in range(40) if i != 5]
    db.close()
