"""Native objects that hold Python objects take part in garbage collection.

A failed asyncio call's exception carries a traceback whose frames hold the
awaitable (a local, or the task `asyncio.wait_for` makes), and the awaitable
holds the future that holds the exception: a cycle. If a native class in that
cycle hides its references from the collector, the whole cycle — the caller's
frame and everything it holds — is never freed. These tests prove, per class,
that the collector sees the references, and end to end, that the caller's
frame is freed after failed calls (Redis and PostgreSQL, every error kind).
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import iokernel
from iokernel import _aio, pg, redis

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
DEAD_PG = "postgresql://u:p@127.0.0.1:1/db"


class Blob:
    """Something a caller's frame holds; alive iff the frame is."""


# ---------------------------------------------------------- per class
def test_call_shows_its_future_to_the_collector(redis_url: str) -> None:
    async def main() -> None:
        c = redis.AsyncClient(redis_url)
        call = c.get("k")
        assert gc.is_tracked(call)
        refs = gc.get_referents(call)
        assert any(isinstance(r, asyncio.Future) for r in refs), refs
        assert await call is None

    asyncio.run(main())


def test_completer_shows_pending_futures_to_the_collector(pg_dsn: str) -> None:
    async def main() -> None:
        db = pg.AsyncClient(pg_dsn)
        comp = _aio.completer(asyncio.get_running_loop())
        assert gc.is_tracked(comp)
        # Pending until the server answers, which it cannot do before 0.3 s.
        call = db.fetchval("SELECT pg_sleep(0.3)")
        refs = gc.get_referents(comp)
        assert comp.pending() >= 1
        assert any(isinstance(r, asyncio.Future) for r in refs), refs
        await call
        assert not any(isinstance(r, asyncio.Future) for r in gc.get_referents(comp))

    asyncio.run(main())


def test_record_shows_its_values_to_the_collector(pg_dsn: str) -> None:
    db = pg.Client(pg_dsn)
    row = db.fetchrow("SELECT 1 AS a, 'x' AS b")
    assert row is not None
    # Plain values can be in no cycle: left untracked, like such a tuple.
    assert not gc.is_tracked(row)
    # A cycle through a record: a list among its values comes to hold it.
    rec = db.fetchrow("SELECT ARRAY[1, 2] AS xs")
    assert rec is not None
    assert gc.is_tracked(rec)
    value = rec["xs"]
    assert value == [1, 2]
    assert any(r is value for r in gc.get_referents(rec))
    blob = Blob()
    ref = weakref.ref(blob)
    value.extend([rec, blob])
    del rec, value, blob
    gc.collect()
    assert ref() is None


# ------------------------------------------------------- end to end
Call = Callable[[Any], Awaitable[Any]]


def _frames_left(make_client: Callable[[], Any], call: Call, error: type[BaseException],
                 via_wait_for: bool, n: int = 200) -> int:
    """Run n failing calls, each in its own frame holding a Blob; count the
    Blobs still alive after a collection."""
    alive: weakref.WeakSet[Blob] = weakref.WeakSet()

    async def handler(c: Any) -> None:
        b = Blob()
        alive.add(b)
        if via_wait_for:
            try:
                await asyncio.wait_for(call(c), 10)
            except error:
                pass
        else:
            aw = call(c)  # the awaitable kept in a local, as create_task users do
            try:
                await aw
            except error:
                pass

    async def main() -> None:
        c = make_client()
        for _ in range(n):
            await handler(c)

    asyncio.run(main())
    gc.collect()
    return len(alive)


@pytest.mark.parametrize("via_wait_for", [True, False], ids=["wait_for", "local"])
def test_redis_connection_error_frees_the_frame(via_wait_for: bool) -> None:
    left = _frames_left(lambda: redis.AsyncClient(DEAD_REDIS, timeout=5),
                        lambda c: c.get("k"), iokernel.ConnectionError, via_wait_for)
    assert left == 0, f"{left} of 200 frames still alive"


@pytest.mark.parametrize("via_wait_for", [True, False], ids=["wait_for", "local"])
def test_redis_response_error_frees_the_frame(redis_url: str, via_wait_for: bool) -> None:
    left = _frames_left(lambda: redis.AsyncClient(redis_url),
                        lambda c: c.execute("NOSUCHCOMMAND"), redis.ResponseError, via_wait_for)
    assert left == 0, f"{left} of 200 frames still alive"


@pytest.mark.parametrize("via_wait_for", [True, False], ids=["wait_for", "local"])
def test_pg_connection_error_frees_the_frame(via_wait_for: bool) -> None:
    left = _frames_left(lambda: pg.AsyncClient(DEAD_PG, timeout=5),
                        lambda c: c.fetchval("SELECT 1"), iokernel.ConnectionError,
                        via_wait_for)
    assert left == 0, f"{left} of 200 frames still alive"


@pytest.mark.parametrize("via_wait_for", [True, False], ids=["wait_for", "local"])
def test_pg_server_error_frees_the_frame(pg_dsn: str, via_wait_for: bool) -> None:
    left = _frames_left(lambda: pg.AsyncClient(pg_dsn),
                        lambda c: c.fetchval("SELECT 1/0"), pg.PostgresError, via_wait_for)
    assert left == 0, f"{left} of 200 frames still alive"


def test_dropped_client_closes_after_failed_calls(redis_server: Any) -> None:
    """The leak kept the client (and its connection) alive; now the client is
    freed with the frames that held it."""
    clients: weakref.WeakSet[Any] = weakref.WeakSet()

    async def main() -> None:
        c = redis.AsyncClient(redis_server.url())
        clients.add(c)
        for _ in range(50):
            try:
                await asyncio.wait_for(c.execute("NOSUCHCOMMAND"), 10)
            except redis.ResponseError:
                pass

    asyncio.run(main())
    gc.collect()
    assert len(clients) == 0


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_failed_calls_do_not_grow_rss() -> None:
    """100,000 failed calls through wait_for: RSS grows by less than 5 MB
    (the leak made it ~2 KB per call, 200 MB in all)."""

    async def run(c: Any, n: int) -> None:
        for _ in range(n):
            try:
                await asyncio.wait_for(c.get("k"), 10)
            except iokernel.ConnectionError:
                pass

    async def main() -> tuple[int, int]:
        c = redis.AsyncClient(DEAD_REDIS, timeout=5)
        await run(c, 10_000)  # warm up: caches, allocator arenas
        gc.collect()
        before = _rss_bytes()
        await run(c, 100_000)
        gc.collect()
        return before, _rss_bytes()

    before, after = asyncio.run(main())
    grown = after - before
    print(f"RSS {before / 1e6:.1f} MB -> {after / 1e6:.1f} MB over 100,000 failed calls")
    assert grown < 5 * 1024 * 1024, f"RSS grew by {grown / 1e6:.1f} MB"
