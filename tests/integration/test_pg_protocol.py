"""PostgreSQL protocol odds and limits: large results, the statement cache
(schema changes, size zero), overload, NOTIFY mid-pipeline, an error in the
middle of a row stream, COPY through a plain query, empty queries, limits, transaction-local
settings, DSN forms, idle sessions closed by the server, loops in threads.

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); side effects are checked with psql
(``pg_server.sql``), never with the client under test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.integration.pg_driver import MODES, Driver, aclose, make, new_app
from tests.servers import PG_USER, PostgresServer


# -------------------------------------------------------------- big, odd, cache
async def test_large_results_and_values(db: Driver) -> None:
    rows = await db.fetch("SELECT g, md5(g::text) FROM generate_series(1, 100000) g")
    assert len(rows) == 100_000
    assert rows[-1][0] == 100_000 and sum(r[0] for r in rows) == 100_000 * 100_001 // 2
    big = "é" * (4 * 1024 * 1024)
    assert await db.fetchval("SELECT $1::text", big) == big
    blob = bytes(range(256)) * 16384  # 4 MiB
    assert await db.fetchval("SELECT $1::bytea", blob) == blob
    assert await db.fetchval("SELECT length(repeat('x', 20000000))") == 20_000_000


async def test_statement_cache_survives_schema_change(db: Driver, table: str) -> None:
    t = table
    await db.execute(f"INSERT INTO {t} VALUES (1, 'a', 1)")
    for _ in range(3):
        assert [tuple(r) for r in await db.fetch(f"SELECT * FROM {t}")] == [(1, "a", 1)]
    await db.execute(f"ALTER TABLE {t} ADD COLUMN extra text DEFAULT 'e'")
    # the cached statement is re-prepared and sent again: no error at all
    rows = await db.fetch(f"SELECT * FROM {t}")
    assert [tuple(r) for r in rows] == [(1, "a", 1, "e")]
    await db.execute(f"ALTER TABLE {t} ALTER COLUMN n TYPE bigint")
    assert await db.fetchval(f"SELECT n FROM {t} WHERE id = $1", 1) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_statement_cache_size_zero(pg_server: PostgresServer, pg_dsn: str,
                                         mode: str) -> None:
    d = Driver(make(pg_dsn, mode == "async", statement_cache_size=0), mode == "async")
    try:
        for i in range(20):
            assert await d.fetchval("SELECT $1::int + 1", i) == i + 1
    finally:
        await d.close()


async def test_overload_fails_fast(pg_server: PostgresServer, pg_dsn: str) -> None:
    db = pg.AsyncClient(pg_server.dsn(application_name=new_app("ovl")), max_in_flight=1,
                        max_queued=1, timeout=10.0, connections=1)
    await db.fetchval("SELECT 1")
    results = await asyncio.gather(
        *(db.fetchval("SELECT $1::int, pg_sleep(0.2)", i) for i in range(10)),
        return_exceptions=True,
    )
    overloaded = [r for r in results if isinstance(r, iokernel.OverloadedError)]
    ok = [r for r in results if isinstance(r, int)]
    assert overloaded, results
    assert len(ok) + len(overloaded) == 10, results
    assert ok == sorted(ok) and all(0 <= v < 10 for v in ok)
    assert await db.fetchval("SELECT 5") == 5
    await aclose(db)


# --------------------------------------------------- protocol odds and limits
async def test_notifications_mid_pipeline_are_ignored(db: Driver, pg_server: PostgresServer) -> None:
    """LISTEN on a shared connection: NOTIFY messages arrive between replies at
    any time and must never be taken for a reply."""
    assert await db.execute(f"LISTEN {db.app.replace('-', '_')}") == "LISTEN"
    channel = db.app.replace("-", "_")
    stop = threading.Event()

    def notifier() -> None:
        while not stop.is_set():
            pg_server.sql(f"SELECT pg_notify('{channel}', repeat('n', 200)) "
                          "FROM generate_series(1, 50)")

    t = threading.Thread(target=notifier)
    t.start()
    try:
        for rnd in range(10):
            def job(i: int, rnd: int = rnd) -> Callable[[], Awaitable[Any]]:
                return lambda: db.fetchval("SELECT $1::int", rnd * 1000 + i)

            got = await db.concurrently([job(i) for i in range(40)])
            assert got == [rnd * 1000 + i for i in range(40)]
    finally:
        stop.set()
        t.join(30)
    assert await db.execute("DO $$ BEGIN RAISE NOTICE 'a notice'; END $$") == "DO"
    assert await db.fetchval("SELECT 'after notices'") == "after notices"


async def test_error_in_the_middle_of_a_row_stream(db: Driver) -> None:
    """Rows already sent, then an error: the caller gets the error (not part of
    the rows); the next caller its own answer."""
    with pytest.raises(pg.PostgresError) as ei:
        await db.fetch("SELECT 1 / (g - 5000) FROM generate_series(1, 10000) g")
    assert ei.value.sqlstate == "22012"
    assert await db.fetchval("SELECT 'next'") == "next"


async def test_copy_through_a_plain_query_fails_alone(db: Driver, table: str) -> None:
    """COPY FROM STDIN is refused before sending; COPY TO STDOUT's data is
    read and dropped: each fails its own call, the connection stays."""
    lost = db.client.stats()["disconnects"]
    for sql in (f"COPY {table} FROM STDIN", "COPY (SELECT 1) TO STDOUT",
                f"SELECT 1; copy {table} (v) from stdin"):
        with pytest.raises(pg.InterfaceError, match="copy_") as ei:
            await db.execute(sql)
        assert "COPY" in str(ei.value)
        assert await db.fetchval("SELECT 3") == 3
    with pytest.raises(pg.InterfaceError, match="copy_from_query"):
        await db.fetch("COPY (SELECT g FROM generate_series(1, 100000) g) TO STDOUT")
    assert db.client.stats()["disconnects"] == lost, "a connection was reset"


async def test_empty_query(db: Driver) -> None:
    assert await db.execute("") == ""
    assert await db.execute("-- only a comment") == ""
    assert await db.fetch("") == []
    assert await db.fetchval("SELECT 1") == 1


async def test_limits_fail_the_call_only(db: Driver) -> None:
    sql = "SELECT " + ", ".join(f"${i}::int" for i in range(1, 70_001))
    with pytest.raises(ValueError, match="65535"):
        await db.fetchval(sql, *range(70_000))
    wide = "SELECT " + ", ".join(f"${i}::int" for i in range(1, 1501))
    row = await db.fetchrow(wide, *range(1500))
    assert row is not None and tuple(row) == tuple(range(1500))
    many = "SELECT ARRAY[" + ", ".join(f"${i}::int" for i in range(1, 20_001)) + "]"
    assert await db.fetchval(many, *range(20_000)) == list(range(20_000))
    with pytest.raises(ValueError, match="NUL"):
        await db.fetchval("SELECT $1::text", "a\x00b")
    with pytest.raises(ValueError, match="NUL"):
        await db.fetchval("SELECT 'a\x00b'")
    assert len(await db.fetchval("SELECT repeat('x', 50000000)")) == 50_000_000
    # a reply over the 64 MiB message limit: a clear error, the connection stays
    lost = db.client.stats()["disconnects"]
    with pytest.raises(iokernel.ResponseTooLargeError, match="max_message_size") as ei:
        await db.fetchval("SELECT repeat('x', 70000000)")
    assert ei.value.option == "max_message_size"
    assert await db.fetchval("SELECT 'fine'") == "fine"
    assert db.client.stats()["disconnects"] == lost


async def test_transaction_local_settings(db: Driver) -> None:
    """SET LOCAL inside a transaction: values stay right or fail loudly."""
    async with db.transaction() as tx:
        await tx.execute("SET LOCAL TimeZone = 'Asia/Kolkata'")
        got = await tx.fetchval("SELECT '2024-01-01 00:00:00+00'::timestamptz")
        assert got.utcoffset() is not None
        assert got.timestamp() == 1704067200.0
    async with db.transaction() as tx:
        await tx.execute("SET LOCAL DateStyle = 'German, DMY'")
        try:
            value = await tx.fetchval("SELECT '2024-02-03'::date")
        except ValueError:
            pass  # refusing to guess is fine
        else:
            import datetime

            assert value == datetime.date(2024, 2, 3)
    assert str(await db.fetchval("SELECT '2024-02-03'::date")) == "2024-02-03"


@pytest.mark.parametrize("mode", MODES)
async def test_dsn_forms(pg_server: PostgresServer, pg_dsn: str, mode: str) -> None:
    pw = pg_server.password
    for dsn in (
        pg_server.dsn().replace("postgresql://", "postgres://"),
        f"postgresql://{PG_USER}:{pw}@/app?host={pg_server.socket_dir}&port={pg_server.port}",
        f"postgresql:///app?host=127.0.0.1&port={pg_server.port}&user={PG_USER}&password={pw}",
        pg_server.dsn(sslmode="disable", connect_timeout="3"),
    ):
        d = Driver(make(dsn, mode == "async", timeout=10.0), mode == "async")
        try:
            assert await d.fetchval("SELECT current_user") == PG_USER, dsn
        finally:
            await d.close()
    with pytest.raises(ValueError, match="sslmode"):
        make(pg_server.dsn(sslmode="required"), mode == "async")
    with pytest.raises(ValueError, match="unknown parameter") as ei:
        make(pg_server.dsn(bogus="1"), mode == "async")
    assert pw not in str(ei.value)


@pytest.mark.parametrize("mode", MODES)
async def test_server_closing_idle_sessions(mode: str) -> None:
    """idle_session_timeout: the server drops idle connections; callers never notice."""
    # sslmode=disable keeps this test's rhythm away from the instant the
    # server closes an idle session. A request on a shared connection that
    # meets that instant is sent again (FATAL 57P05: the server never read
    # it; made certain in tests/faults/test_pg_idle_close.py), but the
    # transaction below runs on a dedicated connection, whose requests are
    # never moved, so it could still fail there.
    with PostgresServer(extra_config=["idle_session_timeout = '500ms'"]) as srv:
        d = Driver(make(srv.dsn(sslmode="disable"), mode == "async", timeout=10.0),
                   mode == "async")
        try:
            for i in range(3):
                assert await d.fetchval("SELECT $1::int", i) == i
                await asyncio.sleep(1.2)
            async with d.transaction() as tx:
                assert await tx.fetchval("SELECT 7") == 7
        finally:
            await d.close()


def test_several_loops_in_threads_share_one_client(pg_server: PostgresServer,
                                                   pg_dsn: str) -> None:
    db = pg.AsyncClient(pg_server.dsn(application_name=new_app("loops")))
    errors: list[BaseException] = []

    def run(n: int) -> None:
        async def body() -> None:
            for j in range(200):
                v = n * 1000 + j
                assert await db.fetchval("SELECT $1::int", v) == v
            async with db.transaction() as tx:
                assert await tx.fetchval("SELECT $1::int", n) == n

        try:
            asyncio.run(body())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
