"""When the PostgreSQL binding gives freed raw rows back to the system
(``malloc_trim``, src/python/pg/heap_trim.rs), against a real PostgreSQL:
only while a big result is converted (a batch of at least 4,096 rows, every
8 MB freed), never for a stream of small queries, however many — a trim
walks the allocator's free lists with its locks held, which a service
running many small queries must not pay for. The count of trims comes from
a test hook; the results themselves are checked too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from iokernel import _native, pg
from tests.servers import PostgresServer

# ~110 bytes a row on the wire: 1,000 rows ~110 KB; 300 such results free
# ~33 MB (four times the trim interval); 200,000 rows ~22 MB.
ROW_SQL = "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, $1::int) g"
SMALL, SMALL_QUERIES, BIG = 1_000, 300, 200_000


def trims() -> int:
    return int(_native._pg_heap_trims())  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def dsn(pg_server: PostgresServer) -> str:
    return pg_server.dsn(application_name="iok-heap-trim")


@pytest.fixture(scope="module")
def db(dsn: str) -> Iterator[Any]:
    client = pg.Client(dsn, timeout=60.0)
    yield client
    client.close()


def check(rows: list[Any], n: int) -> None:
    assert len(rows) == n
    assert rows[0][0] == 1 and rows[-1][0] == n and rows[-1]["pad"] == "x" * 100


def test_many_small_results_never_trim(db: Any) -> None:
    before = trims()
    for _ in range(SMALL_QUERIES):
        check(db.fetch(ROW_SQL, SMALL), SMALL)
    assert trims() == before, "small results must not trigger malloc_trim"


def test_a_big_result_trims(db: Any) -> None:
    before = trims()
    check(db.fetch(ROW_SQL, BIG), BIG)
    assert trims() > before, "a 22 MB result freed no trim"


def test_asyncio_small_results_never_trim_and_a_big_one_does(dsn: str) -> None:
    async def main() -> tuple[int, int, int]:
        db = pg.AsyncClient(dsn, timeout=60.0)
        try:
            start = trims()
            for _ in range(SMALL_QUERIES // 3):
                results = await asyncio.gather(*(db.fetch(ROW_SQL, SMALL) for _ in range(3)))
                for rows in results:
                    check(rows, SMALL)
            after_small = trims()
            check(await db.fetch(ROW_SQL, BIG), BIG)  # delivered in parts of 4,096 rows
            return start, after_small, trims()
        finally:
            await db.close()

    start, after_small, after_big = asyncio.run(main())
    assert after_small == start, "small results must not trigger malloc_trim"
    assert after_big > after_small, "a 22 MB result in parts freed no trim"
