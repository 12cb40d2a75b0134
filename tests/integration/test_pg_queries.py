"""iokernel's PostgreSQL clients against a real PostgreSQL (tests/servers): fetch,
fetchrow, fetchval, execute and executemany, records, and errors (their
fields, errors mid-pipeline reaching only their callers, bad arguments).

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); side effects are checked with psql
(``pg_server.sql``), never with the client under test.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.integration.pg_driver import Driver
from tests.servers import PostgresServer


async def test_fetch_returns_records(db: Driver) -> None:
    rows = await db.fetch("SELECT g AS n, 'x' || g AS s FROM generate_series(1, 3) g")
    assert isinstance(rows, list)
    assert len(rows) == 3
    r = rows[0]
    # a tuple ...
    assert r == (1, "x1")
    assert tuple(r) == (1, "x1")
    assert list(r) == [1, "x1"]
    assert len(r) == 2
    assert r[0] == 1 and r[1] == "x1" and r[-1] == "x1"
    with pytest.raises(IndexError):
        r[2]
    # ... and a mapping
    assert r["n"] == 1 and r["s"] == "x1"
    assert r.get("s") == "x1"
    assert r.get("nope") is None
    with pytest.raises(KeyError):
        r["nope"]
    assert list(r.keys()) == ["n", "s"]
    assert list(r.values()) == [1, "x1"]
    assert list(r.items()) == [("n", 1), ("s", "x1")]
    assert dict(r.items()) == {"n": 1, "s": "x1"}
    assert [tuple(x) for x in rows] == [(1, "x1"), (2, "x2"), (3, "x3")]
    assert rows[2] == (3, "x3") and rows[0] != rows[1]

    assert await db.fetch("SELECT 1 WHERE false") == []
    empty_cols = await db.fetch("SELECT FROM generate_series(1, 2)")
    assert [len(x) for x in empty_cols] == [0, 0]
    anon = await db.fetchrow("SELECT 1, 2 AS b")
    assert anon is not None and anon == (1, 2) and anon["b"] == 2
    assert list(anon.keys()) == ["?column?", "b"]


async def test_fetchrow_and_fetchval(db: Driver) -> None:
    row = await db.fetchrow("SELECT $1::int AS a, $2::text AS b", 5, "q")
    assert row == (5, "q") and row["a"] == 5 and row["b"] == "q"
    assert await db.fetchrow("SELECT 1 WHERE false") is None
    first = await db.fetchrow("SELECT g FROM generate_series(7, 9) g ORDER BY g")
    assert first == (7,)
    assert await db.fetchval("SELECT 42") == 42
    assert await db.fetchval("SELECT 1, 2, 3", column=2) == 3
    assert await db.fetchval("SELECT $1::text, $2::text", "a", "b", column=1) == "b"
    assert await db.fetchval("SELECT 1 WHERE false") is None
    assert await db.fetchval("SELECT NULL") is None
    assert await db.fetchval("SELECT $1::int", None) is None


async def test_execute_returns_command_status(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    t = table
    other = f"{t}_x"
    assert await db.execute(f"CREATE TABLE {other} (a int)") == "CREATE TABLE"
    assert await db.execute(f"DROP TABLE {other}") == "DROP TABLE"
    assert await db.execute(f"INSERT INTO {t} VALUES ($1, $2, $3)", 1, "a", 10) == "INSERT 0 1"
    assert await db.execute(
        f"INSERT INTO {t} SELECT g, 'v', g FROM generate_series(2, 5) g"
    ) == "INSERT 0 4"
    assert await db.execute(f"UPDATE {t} SET v = $1 WHERE id > $2", "z", 3) == "UPDATE 2"
    assert await db.execute(f"DELETE FROM {t} WHERE id = $1", 99) == "DELETE 0"
    assert await db.execute("SELECT 1 UNION ALL SELECT 2") == "SELECT 2"
    assert pg_server.sql(f"SELECT string_agg(id || v, ',' ORDER BY id) FROM {t}") == (
        "1a,2v,3v,4z,5z"
    )


async def test_execute_without_args_runs_several_statements(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    """No arguments: the simple query protocol, several statements in one string."""
    t = table
    status = await db.execute(
        f"INSERT INTO {t} VALUES (10, 'a', 1); INSERT INTO {t} VALUES (11, 'b', 2);\n"
        f"UPDATE {t} SET v = 'm' WHERE id >= 10"
    )
    assert status == "UPDATE 2"  # the last statement's status, as asyncpg and psql report
    assert pg_server.sql(f"SELECT string_agg(v, '' ORDER BY id) FROM {t}") == "mm"
    # An error in the middle: the whole string runs as one implicit transaction.
    with pytest.raises(pg.PostgresError) as ei:
        await db.execute(f"INSERT INTO {t} VALUES (12, 'c', 3); SELECT 1/0; "
                         f"INSERT INTO {t} VALUES (13, 'd', 4)")
    assert ei.value.sqlstate == "22012"
    assert pg_server.sql(f"SELECT count(*) FROM {t}") == "2"
    # With arguments several statements are refused by the server (extended protocol).
    with pytest.raises(pg.PostgresError) as ei:
        await db.execute("SELECT $1::int; SELECT 2", 1)
    assert ei.value.sqlstate == "42601"
    assert await db.fetchval("SELECT 7") == 7


async def test_executemany_ten_thousand_rows(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    t = table
    rows = ((i, f"v{i}", i * 2) for i in range(10_000))  # any iterable, even a generator
    t0 = time.monotonic()
    assert await db.executemany(f"INSERT INTO {t} (id, v, n) VALUES ($1, $2, $3)", rows) is None
    elapsed = time.monotonic() - t0
    assert pg_server.sql(
        f"SELECT count(*), count(DISTINCT id), sum(n), min(id), max(id), "
        f"bool_and(v = 'v' || id) FROM {t}"
    ) == "10000|10000|99990000|0|9999|t"
    assert elapsed < 20, f"executemany of 10,000 rows took {elapsed:.1f}s (pipelined?)"
    # an empty iterable is fine and sends nothing
    assert await db.executemany(f"INSERT INTO {t} (id) VALUES ($1)", []) is None
    # a list of lists, and a statement without a result
    await db.executemany(f"UPDATE {t} SET n = $2 WHERE id = $1", [[0, -1], [1, -2]])
    assert pg_server.sql(f"SELECT n FROM {t} WHERE id IN (0, 1) ORDER BY id") == "-1\n-2"


async def test_executemany_error_is_raised_and_client_stays_usable(
    db: Driver, table: str, pg_server: PostgresServer
) -> None:
    t = table
    with pytest.raises(pg.PostgresError) as ei:
        await db.executemany(
            f"INSERT INTO {t} (id, v) VALUES ($1, $2)",
            [(i if i != 60 else 5, "x") for i in range(100)],
        )
    assert ei.value.sqlstate == "23505"
    assert await db.fetchval("SELECT $1::int + 1", 1) == 2
    # one implicit transaction: all rows or none
    assert pg_server.sql(f"SELECT count(*) FROM {t}") == "0"


# ---------------------------------------------------------------------- errors
async def test_postgres_error_fields(db: Driver, table: str) -> None:
    with pytest.raises(pg.PostgresError) as ei:
        await db.fetchval("SELECT 1/0")
    e = ei.value
    assert isinstance(e, iokernel.Error)
    assert not isinstance(e, (iokernel.ConnectionError, iokernel.TimeoutError))
    assert e.sqlstate == "22012"
    assert e.message == "division by zero"
    assert e.severity == "ERROR"
    assert e.detail is None and e.hint is None
    assert "division by zero" in str(e)
    assert "22012" in str(e) or "division by zero" in repr(e)

    with pytest.raises(pg.PostgresError) as ei:
        await db.fetch("SELECT * FRM nowhere")
    assert ei.value.sqlstate == "42601"
    assert ei.value.position is not None and int(ei.value.position) == 10

    with pytest.raises(pg.PostgresError) as ei:
        await db.execute(
            "DO $$ BEGIN RAISE EXCEPTION 'custom boom %', 7 USING DETAIL = 'the detail', "
            "HINT = 'the hint', ERRCODE = 'IOK01'; END $$"
        )
    e = ei.value
    assert (e.sqlstate, e.message, e.detail, e.hint) == (
        "IOK01", "custom boom 7", "the detail", "the hint"
    )

    await db.execute(f"INSERT INTO {table} (id) VALUES ($1)", 1)
    with pytest.raises(pg.PostgresError) as ei:
        await db.execute(f"INSERT INTO {table} (id) VALUES ($1)", 1)
    assert ei.value.sqlstate == "23505"
    assert ei.value.detail == "Key (id)=(1) already exists."

    with pytest.raises(pg.PostgresError) as ei:
        await db.fetch("SELECT * FROM no_such_table_here")
    assert ei.value.sqlstate == "42P01"
    assert "no_such_table_here" in str(ei.value)

    with pytest.raises(pg.PostgresError) as ei:
        await db.fetchval("SELECT $1::text::int", "not a number")
    assert ei.value.sqlstate == "22P02"
    assert await db.fetchval("SELECT 'still usable'") == "still usable"


async def test_errors_mid_pipeline_reach_only_their_callers(db: Driver, table: str) -> None:
    """50 concurrent queries, some failing (division by zero, unique violation):
    every other caller gets its own correct rows, every failing one its own error."""
    t = table
    await db.execute(f"INSERT INTO {t} (id) VALUES (-1)")

    def job(i: int, rnd: int) -> Callable[[], Awaitable[Any]]:
        async def run() -> Any:
            if i % 7 == 3:
                return await db.fetchval("SELECT $1::int / $2::int", i, 0)
            if i % 11 == 5:
                return await db.execute(f"INSERT INTO {t} (id) VALUES ($1)", -1)
            if i % 3 == 0:
                return await db.fetch(
                    "SELECT $1::int + g AS x, $2::text AS tag FROM generate_series(1, $3::int) g",
                    i, f"tag{i}", i % 5 + 1,
                )
            return await db.fetchrow("SELECT $1::int AS i, repeat('x', $1::int) AS s", i + rnd)

        return run

    for rnd in range(3):
        results = await db.concurrently([job(i, rnd) for i in range(50)])
        for i, res in enumerate(results):
            if i % 7 == 3:
                assert isinstance(res, pg.PostgresError) and res.sqlstate == "22012", (i, res)
            elif i % 11 == 5:
                assert isinstance(res, pg.PostgresError) and res.sqlstate == "23505", (i, res)
                assert res.detail == "Key (id)=(-1) already exists."
            elif i % 3 == 0:
                assert [tuple(r) for r in res] == [
                    (i + g, f"tag{i}") for g in range(1, i % 5 + 2)
                ], (i, res)
            else:
                assert tuple(res) == (i + rnd, "x" * (i + rnd)), (i, res)
    assert await db.fetchval("SELECT 'ok'") == "ok"


async def test_bad_arguments_fail_alone(db: Driver) -> None:
    """Wrong argument counts or Python types fail that call only."""
    with pytest.raises((pg.PostgresError, TypeError, ValueError)):
        await db.fetchval("SELECT $1::int")
    with pytest.raises((pg.PostgresError, TypeError, ValueError)):
        await db.fetchval("SELECT $1::int", 1, 2)
    with pytest.raises((TypeError, ValueError)):
        await db.fetchval("SELECT $1::text", object())
    assert await db.fetchval("SELECT $1::int * 2", 21) == 42


async def test_records_order_like_tuples(db: Driver) -> None:
    rows = await db.fetch("SELECT g % 3 AS a, g AS b FROM generate_series(1, 6) g")
    assert [tuple(r) for r in sorted(rows)] == sorted(tuple(r) for r in rows)
    assert rows[0] < (9, 9) and rows[0] <= rows[0] and not rows[0] > rows[0]
