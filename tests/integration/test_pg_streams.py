"""PostgreSQL results and messages that keep coming: ``cursor()`` (rows in
batches with bounded memory, on a dedicated connection or the
transaction's) and ``listen()`` (NOTIFY delivered as it arrives, a ``Gap``
after the listener's backend is killed, then delivery again).

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); NOTIFYs are sent with psql, never with
the client under test.
"""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.integration.pg_driver import Driver, until
from tests.servers import PostgresServer


async def rows_of(db: Driver, sql: str, *args: Any, prefetch: int = 50) -> list[Any]:
    it = db.client.cursor(sql, *args, prefetch=prefetch)
    if db.is_async:
        return [r async for r in it]
    return list(it)


async def test_cursor_streams_every_row_in_order(db: Driver) -> None:
    rows = await rows_of(db, "SELECT g, g::text AS t FROM generate_series(1, $1::int) g",
                         10_007, prefetch=100)
    assert [tuple(r) for r in rows] == [(i, str(i)) for i in range(1, 10_008)]
    assert rows[5]["t"] == "6"
    assert await rows_of(db, "SELECT 1 WHERE false") == []
    # the dedicated connection went back
    await until(lambda: db.client.stats()["dedicated_connections"] == 0, "lease released")


async def test_cursor_error_midway_raises_after_the_rows_before_it(db: Driver) -> None:
    got: list[int] = []
    with pytest.raises(pg.PostgresError) as ei:
        it = db.client.cursor("SELECT 1 / (g - 3000) FROM generate_series(1, 5000) g",
                              prefetch=100)
        if db.is_async:
            async for r in it:
                got.append(r[0])
        else:
            for r in it:
                got.append(r[0])
    assert ei.value.sqlstate == "22012"
    assert len(got) <= 2999
    assert await db.fetchval("SELECT 2") == 2


async def test_cursor_inside_a_transaction_uses_its_connection(db: Driver, table: str) -> None:
    async with db.transaction() as tx:
        await tx.execute(f"INSERT INTO {table} SELECT g, 'x', g FROM generate_series(1, 500) g")
        rows = await rows_of(tx, f"SELECT n FROM {table} ORDER BY n", prefetch=7)
        assert [r[0] for r in rows] == list(range(1, 501))
        assert await tx.fetchval(f"SELECT count(*) FROM {table}") == 500


async def test_cursor_stopped_early_releases_its_connection(db: Driver) -> None:
    sql = "SELECT g FROM generate_series(1, 10000000) g"
    it = db.client.cursor(sql, prefetch=1000)
    if db.is_async:
        async for r in it:
            if r[0] == 5000:
                break
        await it.aclose()
    else:
        for r in it:
            if r[0] == 5000:
                break
        it.close()
    await until(lambda: db.client.stats()["dedicated_connections"] == 0, "lease released")
    assert await db.fetchval("SELECT 3") == 3


def test_cursor_memory_stays_bounded(pg_dsn: str) -> None:
    """A slow consumer of 2,000,000 rows of 1 kB holds at most a few batches:
    the kernel stops reading while it is behind."""
    import resource

    db = pg.Client(pg_dsn)
    it = db.cursor("SELECT g, repeat('x', 1000) FROM generate_series(1, 2000000) g",
                   prefetch=500)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    n = 0
    for _row in it:
        n += 1
        if n == 1000:
            time.sleep(0.5)  # the server runs ahead meanwhile, if we let it
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    assert n == 2_000_000
    assert grown_mb < 200, f"peak RSS grew {grown_mb:.0f} MB for 2 GB of rows"
    db.close()


# ------------------------------------------------------------------ LISTEN/NOTIFY
def _channel() -> str:
    return f"ch_{uuid.uuid4().hex[:10]}"


def _kill_listener(pg_server: PostgresServer, pid: int | None) -> bool:
    return pg_server.sql(f"SELECT pg_terminate_backend({pid})") == "t"


async def test_async_listen_gap_and_resume(pg_server: PostgresServer, pg_dsn: str) -> None:
    ch = _channel()
    db = pg.AsyncClient(pg_dsn)
    async with db.listen(ch, "other_" + ch) as lst:
        pg_server.sql(f"NOTIFY {ch}, 'one'; NOTIFY other_{ch}")
        n = await lst.get(20)
        assert isinstance(n, pg.Notification) and (n.channel, n.payload) == (ch, "one")
        m = await lst.get(20)
        assert m is not None and m[1:] == ("other_" + ch, "")
        assert _kill_listener(pg_server, lst.backend_pid)
        gap = await lst.get(20)
        assert isinstance(gap, pg.Gap), gap
        # LISTENing again after the reconnect: delivered once it is back
        deadline = time.monotonic() + 30
        got = None
        while got is None:
            assert time.monotonic() < deadline, "no delivery after the reconnect"
            pg_server.sql(f"NOTIFY {ch}, 'two'")
            got = await lst.get(0.5)
        assert isinstance(got, pg.Notification) and got.payload == "two"
    await db.close()


def test_blocking_listen_delivers_while_python_is_busy(
    pg_server: PostgresServer, pg_dsn: str
) -> None:
    ch = _channel()
    db = pg.Client(pg_dsn)
    with db.listen(ch) as lst:
        assert lst.get(0.05) is None
        # Python is busy (holding the GIL) while the NOTIFYs come; the kernel
        # reads them all meanwhile.
        sender = threading.Thread(target=lambda: pg_server.sql(
            "; ".join(f"NOTIFY {ch}, '{i}'" for i in range(100))))
        sender.start()
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:
            sum(range(1000))
        sender.join()
        got = [next(lst) for _ in range(100)]
        assert [n.payload for n in got] == [str(i) for i in range(100)]
        assert _kill_listener(pg_server, lst.backend_pid)
        assert isinstance(next(lst), pg.Gap)
        deadline = time.monotonic() + 30
        item = None
        while item is None:
            assert time.monotonic() < deadline
            pg_server.sql(f"NOTIFY {ch}, 'back'")
            item = lst.get(0.5)
        assert isinstance(item, pg.Notification) and item.payload == "back"
    with pytest.raises(iokernel.Error, match="closed"):
        lst.get(0.1)
    db.close()


async def test_listen_rejects_bad_channels(pg_dsn: str) -> None:
    db = pg.Client(pg_dsn)
    with pytest.raises(TypeError):
        db.listen()  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="channel"):
        db.listen("")
    # a quoted, odd channel name works
    ch = 'we"ird ' + _channel()
    with db.listen(ch) as lst:
        db.execute("SELECT pg_notify($1, 'x')", ch)
        n = lst.get(20)
        assert isinstance(n, pg.Notification) and n.channel == ch
    db.close()


async def test_closed_listeners_leave_no_connection(pg_server: PostgresServer) -> None:
    app = f"iok-lst-{uuid.uuid4().hex[:8]}"
    db = pg.Client(pg_server.dsn(application_name=app), connections=1)
    assert db.fetchval("SELECT 1") == 1
    base = pg_server.connections(app)
    listeners = [db.listen(_channel()) for _ in range(4)]
    assert pg_server.connections(app) == base + 4
    for lst in listeners:
        lst.close()
    del listeners, lst
    await until(lambda: pg_server.connections(app) == base, "listeners' connections closed")
    db.close()


async def test_big_fetch_in_batches_cancelled_midway(pg_dsn: str) -> None:
    """An asyncio fetch whose batches are arriving is cancelled: the rest of
    its rows are read and dropped, the callers around it get their own."""
    import asyncio

    db = pg.AsyncClient(pg_dsn, connections=1)
    big = asyncio.create_task(db.fetch("SELECT g, repeat('x', 100) FROM generate_series(1, 300000) g"))
    small = [asyncio.create_task(db.fetchval("SELECT $1::int", i)) for i in range(20)]
    await asyncio.sleep(0.05)
    big.cancel()
    assert await asyncio.gather(*small) == list(range(20))
    rows = await db.fetch("SELECT g FROM generate_series(1, 10000) g")
    assert [r[0] for r in rows] == list(range(1, 10001))
    assert db.stats()["disconnects"] == 0
    await db.close()
