"""Errors say where the request got to (``stage``) and which failure of its
kind it was (``reason``), so code can decide whether sending it again is
safe: never written → nothing happened on the server; written with no
answer → the outcome is unknown.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

import iokernel
from iokernel import pg, redis
from tests.faults.fakeserver import Close, ConnScript, FakeRedis
from tests.faults.test_redis_faults import arm


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port whose listener never accepts: TCP connects, nothing answers."""
    s = socket.create_server(("127.0.0.1", 0), backlog=8)
    try:
        yield s.getsockname()[1]
    finally:
        s.close()


def test_a_refused_connect_is_not_sent() -> None:
    c = redis.Client("redis://127.0.0.1:1/0", timeout=5.0)
    with pytest.raises(iokernel.ConnectionError) as e:
        c.get("k")
    assert (e.value.stage, e.value.reason) == ("not_sent", "connect_failed"), e.value


def test_a_connect_timeout_is_told_apart(silent_port: int) -> None:
    c = redis.Client(f"redis://127.0.0.1:{silent_port}/0", timeout=5.0, connect_timeout=0.2)
    with pytest.raises(iokernel.ConnectionError) as e:
        c.get("k")
    assert (e.value.stage, e.value.reason) == ("not_sent", "connect_timeout"), e.value


def test_a_reply_timeout_was_written(pg_dsn: str) -> None:
    db = pg.Client(pg_dsn)
    assert db.fetchval("SELECT 1") == 1
    with pytest.raises(iokernel.TimeoutError) as e:
        db.fetchval("SELECT pg_sleep(2)", timeout=0.1)
    assert (e.value.stage, e.value.reason) == ("written", "reply_timeout"), e.value


def test_a_connection_lost_with_the_request_out_was_written(no_leaks: Any) -> None:
    with FakeRedis() as srv:
        srv.data[b"k"] = b"v"
        c = redis.Client(srv.url(), timeout=5.0)
        try:
            assert c.get(b"k") == b"v"
            # A fresh connection that closes when it reads an INCR (a write:
            # never sent again; a read would be, see test_retry_safety.py).
            arm(srv, c, ConnScript.always(Close(), only={"INCR"}))
            with pytest.raises(iokernel.ConnectionError) as e:
                c.execute("INCR", b"n")
            assert (e.value.stage, e.value.reason) == ("written", "connection_lost"), e.value
            assert "outcome is unknown" in str(e.value)
        finally:
            c.close()


async def test_asyncio_errors_carry_the_same(redis_url: str) -> None:
    c = redis.AsyncClient("redis://127.0.0.1:1/0", timeout=5.0)
    with pytest.raises(iokernel.ConnectionError) as e:
        await c.get("k")
    assert (e.value.stage, e.value.reason) == ("not_sent", "connect_failed"), e.value
    ok = redis.AsyncClient(redis_url)
    with pytest.raises(redis.ResponseError) as r:
        await ok.execute("NOSUCHCOMMAND")
    assert r.value.stage == "answered"


def test_server_errors_were_answered(pg_dsn: str) -> None:
    db = pg.Client(pg_dsn)
    with pytest.raises(pg.PostgresError) as e:
        db.fetchval("SELECT 1/0")
    assert e.value.stage == "answered" and e.value.reason is None


def test_overloaded_was_not_sent(pg_dsn: str) -> None:
    slow = pg.AsyncClient(pg_dsn, max_in_flight=1, max_queued=0, connections=1)

    async def main() -> Any:
        # Both statements known first: a known statement's call is
        # submitted (and admitted) when it is made; an unknown one's only
        # after its Describe, which may be answered before the next call is
        # made (the guard is given back by the kernel, whatever the loop does).
        await slow.fetchval("SELECT pg_sleep($1)", 0)
        await slow.fetchval("SELECT 1")
        t = slow.fetchval("SELECT pg_sleep($1)", 2)  # in flight for 2 s
        try:
            with pytest.raises(iokernel.OverloadedError) as e:
                await slow.fetchval("SELECT 1")
            return e.value
        finally:
            await t

    err = asyncio.run(main())
    assert err.stage == "not_sent"
