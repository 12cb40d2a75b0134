"""executemany streams its rows: the server works on the first ones while the
caller still encodes the rest (src/python/pg/many.rs, src/kernel/body.rs).

Checked against a real PostgreSQL, with both client kinds: that the rows
really are on the server before the caller's iterator has finished; that a
row which cannot be encoded mid-stream rolls the whole batch back and names
the row; that queries from other callers, held behind the stream on the same
connection, get their own answers; that a killed backend mid-stream gives
``ConnectionError`` and the client recovers; that inside a transaction the
stream is part of it.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.integration.pg_driver import MODES, Driver, eventually, make, new_app
from tests.servers import PostgresServer

ROWS = 20_000


def _rows(n: int, *, bad_at: int | None = None) -> Iterator[tuple[Any, ...]]:
    for i in range(n):
        yield (i, object() if i == bad_at else f"v{i}", i)


def _insert(t: str) -> str:
    return f"INSERT INTO {t} (id, v, n) VALUES ($1, $2, $3)"


async def test_rows_reach_the_server_while_the_iterator_still_runs(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    seen: dict[str, str] = {}

    def rows() -> Iterator[tuple[int, str, int]]:
        for i in range(ROWS):
            if i == ROWS // 2:
                # Half the rows are encoded: the server must already be
                # inserting (its transaction has an id) although the caller
                # has not finished handing them over.
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    seen["busy"] = pg_server.sql(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = "
                        f"'{db.app}' AND backend_xid IS NOT NULL"
                    )
                    if seen["busy"] == "1":
                        break
                    time.sleep(0.05)
            yield (i, f"v{i}", i)

    assert await db.executemany(_insert(table), rows()) is None
    assert seen["busy"] == "1", "nothing reached the server before the rows were all encoded"
    assert pg_server.sql(f"SELECT count(*), sum(n) FROM {table}") == f"{ROWS}|{ROWS * (ROWS - 1) // 2}"


@pytest.mark.parametrize("bad_at", [3, ROWS - 7], ids=["first-chunk", "mid-stream"])
async def test_a_row_that_cannot_be_encoded_rolls_the_batch_back(
    db: Driver, table: str, pg_server: PostgresServer, bad_at: int
) -> None:
    unretrieved: list[dict[str, Any]] = []
    if db.is_async:
        asyncio.get_running_loop().set_exception_handler(lambda _l, ctx: unretrieved.append(ctx))
    with pytest.raises(pg.DataError, match=rf"executemany row {bad_at} .*\$2 \(text\).*nothing .* was kept"):
        await db.executemany(_insert(table), _rows(ROWS, bad_at=bad_at))
    # The rows before it were sent (mid-stream) but the server rolled them back.
    assert await db.fetchval("SELECT $1::int * 2", 21) == 42
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"
    await db.executemany(_insert(table), _rows(ROWS))
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == str(ROWS)
    gc.collect()
    await asyncio.sleep(0.05)
    assert unretrieved == [], "a future nobody awaits got an exception"


async def test_an_exception_from_the_callers_iterator_propagates_unchanged(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    class Boom(Exception):
        def __init__(self, a: int, b: int) -> None:  # not constructible from one message
            super().__init__(a, b)

    def rows() -> Iterator[tuple[int, str, int]]:
        yield from ((i, "x", i) for i in range(5_000))
        raise Boom(1, 2)

    with pytest.raises(Boom) as ei:
        await db.executemany(_insert(table), rows())
    assert ei.value.args == (1, 2)
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"


@pytest.mark.parametrize("mode", MODES)
async def test_callers_held_behind_a_stream_on_one_connection_get_their_own_answers(
    pg_server: PostgresServer, table: str, mode: str
) -> None:
    d = Driver(make(pg_server.dsn(application_name=new_app("held")), mode == "async",
                    connections=1, timeout=30.0), mode == "async")
    try:
        await d.fetchval("SELECT 1")
        n_others = 40

        async def other(k: int) -> Any:
            return await d.fetchval("SELECT $1::int * 3", k)

        async def many() -> Any:
            return await d.executemany(_insert(table), _rows(ROWS))

        jobs = [many] + [lambda k=k: other(k) for k in range(n_others)]  # type: ignore[misc]
        got = await d.concurrently(jobs)
        assert got[0] is None, got[0]
        assert got[1:] == [3 * k for k in range(n_others)]
        assert pg_server.sql(f"SELECT count(*) FROM {table}") == str(ROWS)
        assert d.client.stats()["connections"] == 1
    finally:
        await d.close()


async def test_a_backend_killed_mid_stream_is_a_connection_error_then_recovers(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    def rows() -> Iterator[tuple[int, str, int]]:
        for i in range(ROWS * 2):
            if i == ROWS:
                assert pg_server.terminate(db.app) >= 1
                time.sleep(0.2)  # let the kernel see the connection go
            yield (i, "x", i)

    with pytest.raises(iokernel.ConnectionError):
        await db.executemany(_insert(table), rows())
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"
    assert await eventually(lambda: db.fetchval("SELECT 5")) == 5
    await db.executemany(_insert(table), _rows(ROWS))
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == str(ROWS)


async def test_a_streamed_batch_inside_a_transaction_is_part_of_it(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    with pytest.raises(RuntimeError, match="undo"):
        async with db.transaction() as tx:
            await tx.executemany(_insert(table), _rows(ROWS))
            assert await tx.fetchval(f"SELECT count(*) FROM {table}") == ROWS
            raise RuntimeError("undo")
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"

    # A row that cannot be encoded fails the transaction, like a failed statement.
    with pytest.raises(pg.DataError, match="executemany row"):
        async with db.transaction() as tx:
            await tx.execute(f"INSERT INTO {table} (id) VALUES (-1)")
            await tx.executemany(_insert(table), _rows(ROWS, bad_at=ROWS // 2))
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"

    async with db.transaction() as tx:
        await tx.executemany(_insert(table), _rows(ROWS))
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == str(ROWS)
    assert isinstance(await db.fetchval("SELECT now()"), object)
    assert not isinstance(db.client, pg.Client) or db.client.stats()["dedicated_connections"] == 0


# ------------------------------------------------------- binary parameters
# Every batch is encoded for the statement's described types, in binary
# (src/python/pg/encode.rs), short or long; both must store the same values.
KINDS = "i2 int2, i4 int4, i8 int8, f8 float8, b bool, by bytea, u uuid, t text, n numeric"


def _edge_rows() -> list[tuple[Any, ...]]:
    ints = [(-(2**15), -(2**31), -(2**63)), (2**15 - 1, 2**31 - 1, 2**63 - 1), (0, 0, 0),
            (-1, -1, -1), (None, None, None)]
    floats = [0.1, -0.0, 1e-300, 1.7976931348623157e308, math.inf, -math.inf, math.nan,
              5e-324, None]
    blobs = [b"", b"\x00\xff\x10", bytearray(b"\x01\x02"), bytes(range(256)), None]
    uuids = [uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4(), None]
    rows = []
    for k in range(96):  # over _DESCRIBE_FROM, so the batch goes in binary
        i2, i4, i8 = ints[k % len(ints)]
        rows.append((i2, i4, i8, floats[k % len(floats)], [True, False, None][k % 3],
                     blobs[k % len(blobs)], uuids[k % len(uuids)], f"t{k}", k))
    return rows


async def test_binary_and_text_parameters_store_the_same_values(
    db: Driver, pg_server: PostgresServer
) -> None:
    tb, tt = (f"kinds_{tag}_{uuid_suffix()}" for tag in ("bin", "txt"))
    for t in (tb, tt):
        pg_server.sql(f"CREATE TABLE {t} (k serial, {KINDS})")
    try:
        rows = _edge_rows()
        sql = "INSERT INTO {} (i2, i4, i8, f8, b, by, u, t, n) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
        await db.executemany(sql.format(tb), rows)  # described: binary
        for i in range(0, len(rows), 8):  # short batches: text
            await db.executemany(sql.format(tt), rows[i:i + 8])
        cols = "i2, i4, i8, f8::text, b, by, u, t, n"
        assert pg_server.sql(f"SELECT count(*) FROM {tb}") == str(len(rows))
        for a, b in ((tb, tt), (tt, tb)):
            diff = pg_server.sql(f"SELECT {cols} FROM {a} EXCEPT SELECT {cols} FROM {b}")
            assert diff == "", f"{a} has rows {b} does not:\n{diff[:500]}"
        # And they read back as what went in.
        got = await db.fetch(f"SELECT i2, i4, i8, f8, b, by, u, t, n FROM {tb} ORDER BY n")
        for g, want in zip(got, rows, strict=True):
            for x, y in zip(tuple(g), want, strict=True):
                if isinstance(y, float) and y != y:
                    assert x != x
                elif isinstance(y, bytearray):
                    assert x == bytes(y)
                else:
                    assert x == y, (g, want)
    finally:
        pg_server.sql(f"DROP TABLE {tb}; DROP TABLE {tt}")


def uuid_suffix() -> str:
    return uuid.uuid4().hex[:10]


@pytest.mark.parametrize(("value", "stored"), [
    ("42", None),  # str for an int4 parameter: refused, as asyncpg does
    (7.0, "7"),  # an integral float: 7, as asyncpg sends it
    (7.5, None),  # a fraction: refused (asyncpg truncates it to 7)
    (2**40, None),  # out of int4's range: refused before sending
    (True, "1"),  # bool is an int: 1, as asyncpg sends it
])
async def test_values_of_another_kind_are_encoded_or_refused_before_sending(
    db: Driver, table: str, pg_server: PostgresServer, value: Any, stored: str | None
) -> None:
    rows = [(i, "x", i) for i in range(100)] + [(1000, "odd", value)]
    for batch in (rows, rows[-1:]):
        pg_server.sql(f"TRUNCATE {table}")
        if stored is not None:
            await db.executemany(_insert(table), batch)
            assert pg_server.sql(f"SELECT n FROM {table} WHERE id = 1000") == stored
        else:
            with pytest.raises(pg.DataError, match=r"row \d+ .*argument \$3 \(int4\)"):
                await db.executemany(_insert(table), batch)
            assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"


async def test_types_are_described_per_call_so_schema_changes_are_seen(
    db: Driver, pg_server: PostgresServer
) -> None:
    t = f"alter_{uuid_suffix()}"
    pg_server.sql(f"CREATE TABLE {t} (a int4)")
    try:
        sql = f"INSERT INTO {t} (a) VALUES ($1)"
        await db.executemany(sql, [(i,) for i in range(100)])
        pg_server.sql(f"ALTER TABLE {t} ALTER COLUMN a TYPE text")
        await db.executemany(sql, [(i,) for i in range(100)])  # ints, now into text
        pg_server.sql(f"ALTER TABLE {t} ALTER COLUMN a TYPE float8 USING a::float8")
        await db.executemany(sql, [(i + 0.5,) for i in range(100)])
        assert pg_server.sql(f"SELECT count(*), sum(a) FROM {t}") == f"300|{2 * 4950 + 5000}"
        with pytest.raises(pg.PostgresError) as ei:
            await db.executemany(f"INSERT INTO {t} (nope) VALUES ($1)", _rows(100))
        assert ei.value.sqlstate == "42703"
    finally:
        pg_server.sql(f"DROP TABLE {t}")


@pytest.mark.parametrize("mode", MODES)
async def test_a_full_client_refuses_a_streamed_batch_at_once(
    pg_server: PostgresServer, table: str, mode: str
) -> None:
    """Room for one request (1 connection × max_in_flight 1, no queue): while a
    slow query holds it, executemany fails fast with OverloadedError, sends
    nothing, and the client works once the slow query is done."""
    d = Driver(make(pg_server.dsn(application_name=new_app("full")), mode == "async",
                    connections=1, max_in_flight=1, max_queued=0, timeout=10.0),
               mode == "async")
    try:
        # Described beforehand, so that slow() is one request.
        await d.fetchval("SELECT 1 FROM pg_sleep($1::float8)", 0)

        async def slow() -> Any:
            return await d.fetchval("SELECT 1 FROM pg_sleep($1::float8)", 1.5)

        async def once_slow_holds_the_room() -> None:
            # Only slow() can be outstanding before the others submit; it
            # then holds the room for 1.5 s, however late each job started.
            deadline = time.monotonic() + 30
            while d.client.stats()["outstanding"] == 0:
                assert time.monotonic() < deadline, "the slow query was never sent"
                await asyncio.sleep(0.005) if d.is_async else time.sleep(0.005)

        async def many() -> Any:
            await once_slow_holds_the_room()
            return await d.executemany(_insert(table), _rows(ROWS))

        async def streamed_without_describe() -> Any:
            # The native call itself (no Describe first): the streamed path's
            # own admission check.
            await once_slow_holds_the_room()
            svc = d.client._svc
            if not d.is_async:
                return svc.query_many(_insert(table), _rows(ROWS), 10.0, None, None)
            loop = asyncio.get_running_loop()
            from iokernel import _aio
            return await svc.submit_many(_aio.completer(loop), loop.create_future(),
                                         _insert(table), _rows(ROWS), 10.0, None, None)

        got = await d.concurrently([slow, many, streamed_without_describe])
        assert got[0] == 1, got
        assert isinstance(got[1], iokernel.OverloadedError), got
        assert isinstance(got[2], iokernel.OverloadedError), got
        assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"
        await d.executemany(_insert(table), _rows(ROWS))
        assert pg_server.sql(f"SELECT count(*) FROM {table}") == str(ROWS)
    finally:
        await d.close()
