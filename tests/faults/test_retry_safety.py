"""Retry safety: a request written and then left unanswered by a lost
connection is never sent again unless it is idempotent.

A relay in front of the REAL server forwards the request, swallows the
server's reply and closes both sides (``Cut``), so the server executes the
request while the client never hears back. Then:

* a write (Redis INCR, a PostgreSQL INSERT) fails with
  ``iokernel.ConnectionError`` at stage ``written`` saying the outcome is
  unknown, and the server executed it exactly once (counted afterwards);
* a Redis read-only command (GET, its command table flags it ``readonly``)
  is sent again on a new connection and the caller gets its value;
* with ``idempotent=True`` on the client, the write is sent again too (and
  the server ran it twice: the flag is the caller's promise that it may).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import iokernel
from iokernel import pg, redis
from tests.faults.relay import Cut, Relay

pytestmark = pytest.mark.timeout(60)


class CutAfter:
    """Arms when the client sends a chunk containing ``marker`` (once): the
    next chunk the server sends on that connection is swallowed and the
    connection closed."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.lock = threading.Lock()
        self.armed_on: int | None = None
        self.done = False
        self.cuts = 0

    def up(self, i: int, chunk: bytes) -> None:
        with self.lock:
            if not self.done and self.armed_on is None and self.marker in chunk:
                self.armed_on = i

    def down(self, i: int, chunk: bytes) -> bytes:
        with self.lock:
            if self.armed_on == i and not self.done:
                self.done = True
                self.cuts += 1
                raise Cut
        return chunk


@pytest.fixture
def redis_relay(redis_server: Any) -> Iterator[tuple[Relay, CutAfter, str]]:
    cut = CutAfter(b"\r\nretry:")  # the key of every command below
    with Relay((redis_server.host, redis_server.port), delay=lambda i: 0.0,
               rewrite_down=cut.down, watch_up=cut.up) as r:
        url = redis_server.url().replace(f":{redis_server.port}/", f":{r.port}/")
        yield r, cut, url


def _client(url: str, **kw: Any) -> redis.Client:
    return redis.Client(url, timeout=5.0, connect_timeout=2.0, health_check_interval=None, **kw)


def test_redis_write_is_not_resent(redis_relay: tuple[Relay, CutAfter, str],
                                   redis_url: str) -> None:
    relay, cut, url = redis_relay
    direct = redis.Client(redis_url)
    c = _client(url)
    try:
        with pytest.raises(iokernel.ConnectionError) as ei:
            c.incr(b"retry:n")
        assert cut.cuts == 1
        assert ei.value.stage == "written"
        assert "outcome is unknown" in str(ei.value)
        assert direct.get(b"retry:n") == b"1"  # the server ran it exactly once
        # The client reconnects and goes on.
        assert c.incr(b"retry:n") == 2
        assert relay.accepted == 2
    finally:
        c.close()
        direct.close()


def test_redis_read_is_resent(redis_relay: tuple[Relay, CutAfter, str], redis_url: str) -> None:
    relay, cut, url = redis_relay
    direct = redis.Client(redis_url)
    direct.set(b"retry:k", b"v1")
    c = _client(url)
    try:
        assert c.get(b"retry:k") == b"v1"
    finally:
        c.close()
        direct.close()
    assert cut.cuts == 1
    assert relay.accepted == 2  # answered on the second connection


async def test_redis_async_read_resent_write_not(redis_relay: tuple[Relay, CutAfter, str],
                                                 redis_url: str) -> None:
    relay, cut, url = redis_relay
    direct = redis.Client(redis_url)
    direct.set(b"retry:a", b"x")
    c = redis.AsyncClient(url, timeout=5.0, connect_timeout=2.0, health_check_interval=None)
    try:
        assert await c.get(b"retry:a") == b"x"
        assert cut.cuts == 1
        cut.done = False
        cut.armed_on = None
        with pytest.raises(iokernel.ConnectionError) as ei:
            await c.set(b"retry:a", b"y")
        assert cut.cuts == 2 and ei.value.stage == "written"
        assert direct.get(b"retry:a") == b"y"  # it did happen, once
        # The client reconnects and goes on; only once a request went over
        # the new connection is its count certain (it used to be read while
        # the reconnect could still be on its way: flaky on a loaded machine).
        assert await c.get(b"retry:a") == b"y"
        assert relay.accepted == 3
    finally:
        await c.close()
        direct.close()


def test_redis_idempotent_client_resends_writes(redis_relay: tuple[Relay, CutAfter, str],
                                                redis_url: str) -> None:
    relay, cut, url = redis_relay
    direct = redis.Client(redis_url)
    c = _client(url, idempotent=True)
    try:
        assert c.incr(b"retry:i") == 2  # ran twice: the caller said it may
        assert cut.cuts == 1 and relay.accepted == 2
        assert direct.get(b"retry:i") == b"2"
    finally:
        c.close()
        direct.close()


@pytest.fixture
def pg_relay(pg_server: Any) -> Iterator[tuple[Relay, CutAfter, str]]:
    cut = CutAfter(b"retry_t")
    with Relay((pg_server.host, pg_server.port), delay=lambda i: 0.0,
               rewrite_down=cut.down, watch_up=cut.up) as r:
        dsn = pg_server.dsn().replace(f":{pg_server.port}/", f":{r.port}/")
        yield r, cut, dsn


async def test_pg_insert_not_resent_select_resent_when_idempotent(
    pg_relay: tuple[Relay, CutAfter, str], pg_dsn: str
) -> None:
    relay, cut, dsn = pg_relay
    direct = pg.AsyncClient(pg_dsn)
    await direct.execute("DROP TABLE IF EXISTS retry_t")
    await direct.execute("CREATE TABLE retry_t (n int)")
    db = pg.AsyncClient(dsn, timeout=5.0, connect_timeout=2.0, connections=1,
                        health_check_interval=None)
    ro = pg.AsyncClient(dsn, timeout=5.0, connect_timeout=2.0, connections=1,
                        health_check_interval=None, idempotent=True)
    try:
        with pytest.raises(iokernel.ConnectionError) as ei:
            await db.execute("INSERT INTO retry_t VALUES (1)")
        assert cut.cuts == 1 and ei.value.stage == "written"
        assert "outcome is unknown" in str(ei.value)
        assert await direct.fetchval("SELECT count(*) FROM retry_t") == 1
        cut.done = False
        cut.armed_on = None
        assert await ro.fetchval("SELECT count(*) FROM retry_t") == 1
        assert cut.cuts == 2
        assert relay.accepted >= 3  # db's first, ro's first and ro's second at least
    finally:
        await db.close()
        await ro.close()
        await direct.execute("DROP TABLE IF EXISTS retry_t")
        await direct.close()
