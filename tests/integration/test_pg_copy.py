"""PostgreSQL COPY with asyncpg's signatures: records (binary format, or
text for column types without a binary encoder), raw data from a path, a
file-like object or an (async) iterable, COPY TO STDOUT into a path, a
file-like object or a callable; errors fail the COPY alone, and other
callers' queries are not held up meanwhile.

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); what was stored is checked with psql.
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from iokernel import pg
from tests.integration.pg_driver import Driver
from tests.servers import PostgresServer

UTC = datetime.timezone.utc


@pytest.fixture
def wide(pg_server: PostgresServer, pg_dsn: str) -> Iterator[str]:
    name = f"c_{uuid.uuid4().hex[:10]}"
    pg_server.sql(
        f"CREATE TABLE {name} (i int, b bigint, t text, f float8, ok bool, "
        "ts timestamptz, d date, u uuid, j jsonb, raw bytea, v varchar(20))")
    yield name
    pg_server.sql(f"DROP TABLE IF EXISTS {name}")


async def test_copy_records_binary_every_type(db: Driver, wide: str,
                                              pg_server: PostgresServer) -> None:
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    ts = datetime.datetime(2024, 2, 29, 12, 30, 45, 123456, tzinfo=UTC)
    recs = [
        (1, 2**40, "tab\there\nnl", 1.5, True, ts, datetime.date(1999, 12, 31), u,
         '{"a": [1, 2]}', b"\x00\xff", "vc"),
        (None,) * 11,
        (-5, -1, "", -0.25, False, ts + datetime.timedelta(days=-10000),
         datetime.date(2100, 1, 1), u, "null", b"", "x"),
    ]
    assert await db.copy_records_to_table(wide, records=recs) == "COPY 3"
    got = pg_server.sql_rows(
        f"SELECT i, b, t, f, ok, ts AT TIME ZONE 'UTC', d, u, j, encode(raw, 'hex'), v "
        f"FROM {wide} WHERE i = -5")
    earlier = (ts - datetime.timedelta(days=10000)).strftime("%Y-%m-%d %H:%M:%S.%f")
    assert got[0] == ["-5", "-1", "", "-0.25", "f", earlier, "2100-01-01",
                      str(u), "null", "", "x"]
    got = pg_server.sql_rows(
        f"SELECT i, b, f, ok, ts AT TIME ZONE 'UTC', d, u, j, encode(raw, 'hex'), v "
        f"FROM {wide} WHERE i = 1")
    assert got[0] == ["1", str(2**40), "1.5", "t", "2024-02-29 12:30:45.123456",
                      "1999-12-31", str(u), '{"a": [1, 2]}', "00ff", "vc"]
    assert pg_server.sql(f"SELECT t = E'tab\\there\\nnl' FROM {wide} WHERE i = 1") == "t"
    assert pg_server.sql(f"SELECT count(*) FROM {wide} WHERE i IS NULL AND t IS NULL") == "1"


async def test_copy_records_subset_of_columns_and_where(db: Driver, wide: str,
                                                        pg_server: PostgresServer) -> None:
    recs = [(i, f"r{i}") for i in range(1000)]
    st = await db.copy_records_to_table(wide, records=iter(recs), columns=["i", "t"],
                                        where="i % 2 = 0")
    assert st == "COPY 500"
    assert pg_server.sql(f"SELECT count(*), sum(i) FROM {wide}") == f"500|{sum(range(0, 1000, 2))}"


async def test_copy_records_text_format_for_other_types(
    db: Driver, pg_server: PostgresServer
) -> None:
    t = f"c_{uuid.uuid4().hex[:10]}"
    pg_server.sql(f"CREATE TABLE {t} (n numeric, iv interval, a int[], s text)")
    try:
        recs = [(decimal.Decimal("1.25"), datetime.timedelta(days=1, seconds=3), [1, 2],
                 "back\\slash\ttab"), (None, None, None, None)]
        assert await db.copy_records_to_table(t, records=recs) == "COPY 2"
        assert pg_server.sql(
            f"SELECT n, iv = interval '1 day 3 seconds', a, s = E'back\\\\slash\\ttab' "
            f"FROM {t} WHERE n IS NOT NULL") == "1.25|t|{1,2}|t"
    finally:
        pg_server.sql(f"DROP TABLE {t}")


async def test_copy_records_bad_value_copies_nothing(db: Driver, wide: str,
                                                     pg_server: PostgresServer) -> None:
    recs = [(1, 1, "a")] * 5000 + [("not an int", 1, "a")]
    with pytest.raises(TypeError, match=r"record 5000 .*column 0"):
        await db.copy_records_to_table(wide, records=recs, columns=["i", "b", "t"])
    with pytest.raises(ValueError, match="no column"):
        await db.copy_records_to_table(wide, records=recs, columns=["nope"])
    with pytest.raises(pg.PostgresError) as ei:
        await db.copy_records_to_table(wide + "_missing", records=recs)
    assert ei.value.sqlstate == "42P01"
    assert pg_server.sql(f"SELECT count(*) FROM {wide}") == "0"
    assert await db.fetchval("SELECT 1") == 1


async def test_copy_to_table_from_path_file_and_iterables(
    db: Driver, wide: str, pg_server: PostgresServer, tmp_path: Path
) -> None:
    p = tmp_path / "data.csv"
    p.write_bytes(b"".join(f"{i},row {i}\n".encode() for i in range(100_000)))
    assert await db.copy_to_table(wide, source=p, columns=["i", "t"], format="csv") \
        == "COPY 100000"
    with open(p, "rb") as f:
        assert await db.copy_to_table(wide, source=f, columns=["i", "t"], format="csv") \
            == "COPY 100000"
    pieces = [b"1\tx", b"y\n2\t", b"z\n"]
    assert await db.copy_to_table(wide, source=pieces, columns=["i", "t"]) == "COPY 2"
    if db.is_async:
        async def agen():  # type: ignore[no-untyped-def]
            for b in pieces:
                yield b
        assert await db.copy_to_table(wide, source=agen(), columns=["i", "t"]) == "COPY 2"
    assert pg_server.sql(f"SELECT count(*) FROM {wide} WHERE t = 'xy'") == (
        "2" if db.is_async else "1")
    with pytest.raises(pg.PostgresError) as ei:
        await db.copy_to_table(wide, source=[b"1\tx\tbad\textra\n"], columns=["i", "t"])
    assert ei.value.sqlstate == "22P04"


async def test_copy_from_query_and_table(db: Driver, wide: str, pg_server: PostgresServer,
                                         tmp_path: Path) -> None:
    pg_server.sql(f"INSERT INTO {wide} (i, t) SELECT g, 'v' || g FROM generate_series(1, 50000) g")
    buf = io.BytesIO()
    assert await db.copy_from_table(wide, output=buf, columns=["i", "t"]) == "COPY 50000"
    lines = buf.getvalue().split(b"\n")
    assert lines[0] == b"1\tv1" and lines[-2] == b"50000\tv50000"
    out = tmp_path / "out.csv"
    st = await db.copy_from_query(f"SELECT i, t FROM {wide} WHERE i <= $1 AND t <> $2 ORDER BY i",
                                  10, "v3", output=out, format="csv", header=True)
    assert st == "COPY 9"
    assert out.read_text().splitlines()[:3] == ["i,t", "1,v1", "2,v2"]
    got: list[bytes] = []
    if db.is_async:
        async def sink(b: bytes) -> None:
            got.append(b)
        await db.copy_from_query("SELECT 1", output=sink)
    else:
        await db.copy_from_query("SELECT 1", output=got.append)
    assert b"".join(got) == b"1\n"
    with pytest.raises(pg.PostgresError):
        await db.copy_from_query("SELECT 1/0", output=io.BytesIO())
    assert await db.fetchval("SELECT 2") == 2


async def test_copy_inside_a_transaction_rolls_back(db: Driver, wide: str,
                                                    pg_server: PostgresServer) -> None:
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await tx.copy_records_to_table(wide, records=[(1,)], columns=["i"])
            assert await tx.fetchval(f"SELECT count(*) FROM {wide}") == 1
            raise RuntimeError("roll back")
    assert pg_server.sql(f"SELECT count(*) FROM {wide}") == "0"


def test_copy_does_not_hold_up_shared_queries(pg_dsn: str, wide: str) -> None:
    """A COPY whose source stalls mid-way (until the test lets it go on):
    queries on the shared connection are answered meanwhile. Had they
    waited for the COPY, they would time out (the source holds for 60 s)."""
    import threading

    db = pg.Client(pg_dsn, connections=1)
    started, go_on = threading.Event(), threading.Event()

    def stalling() -> Iterator[bytes]:
        yield b"0\tx\n"
        started.set()
        go_on.wait(60)
        for i in range(1, 5):
            yield f"{i}\tx\n".encode()

    th = threading.Thread(
        target=lambda: db.copy_to_table(wide, source=stalling(), columns=["i", "t"]))
    th.start()
    try:
        assert started.wait(30), "the COPY did not start"
        for _ in range(20):
            assert db.fetchval("SELECT 1", timeout=20) == 1
        assert th.is_alive(), "the COPY is still under way while the queries were answered"
    finally:
        go_on.set()
        th.join(60)
    assert db.fetchval(f"SELECT count(*) FROM {wide}") == 5
    db.close()


def test_copy_from_a_fast_source_keeps_memory_bounded(pg_dsn: str, wide: str,
                                                      pg_server: PostgresServer) -> None:
    """100 MB from a source far faster than the server: the writer waits for
    the connection instead of queueing it all (RSS grows by far less)."""
    import resource

    pg_server.sql(f"ALTER TABLE {wide} SET UNLOGGED")
    line = b"1\t" + b"x" * 98 + b"\n"
    piece = line * 655  # ~64 KB
    db = pg.Client(pg_dsn, timeout=300.0)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def source() -> Iterator[bytes]:
        for _ in range(1600):  # ~105 MB
            yield bytes(piece)

    assert db.copy_to_table(wide, source=source(), columns=["i", "t"]) == f"COPY {1600 * 655}"
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
    assert grown_mb < 60, f"RSS grew {grown_mb:.0f} MB for a 105 MB COPY"
    db.close()


@pytest.mark.parametrize("source", ["iterable", "async-iterable", "raw"])
async def test_async_copy_lets_the_event_loop_run(pg_dsn: str, wide: str, source: str) -> None:
    """A big COPY from asyncio: a ticker task keeps ticking while the data
    is encoded and sent, not only before and after. The source notes the
    tick count as it is consumed; the ticker must have advanced between its
    first and its last piece (was: 200,000 records encoded in one call with
    the loop stopped, so the count did not move at all)."""
    db = pg.AsyncClient(pg_dsn, timeout=120.0)
    ticks, stop = 0, False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0)

    seen: list[int] = []
    n = 200_000

    def records() -> Iterator[tuple[int, int, str]]:
        for k in range(n):
            if k % 1000 == 0:
                seen.append(ticks)
            yield (k, k, "x")

    async def arecords() -> AsyncIterator[tuple[int, int, str]]:
        for r in records():
            yield r

    def raw() -> Iterator[bytes]:
        for k in range(200):
            seen.append(ticks)
            yield b"".join(b"%d\t%d\tx\n" % (j, j) for j in range(k * 1000, k * 1000 + 1000))

    task = asyncio.create_task(ticker())
    try:
        if source == "raw":
            status = await db.copy_to_table(wide, source=raw(), columns=["i", "b", "t"])
        else:
            status = await db.copy_records_to_table(
                wide, records=records() if source == "iterable" else arecords(),
                columns=["i", "b", "t"])
    finally:
        stop = True
        await task
    await db.close()
    assert status == f"COPY {n}"
    assert len(seen) == 200
    assert seen[-1] - seen[0] >= 100, f"the loop did not run during the COPY: {seen[:5]}..."
