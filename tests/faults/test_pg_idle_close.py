"""A request that meets the server's close of an idle session is sent again
on a shared connection, and fails clearly on a dedicated one.

PostgreSQL's ``idle_session_timeout`` ends a session that sat idle: the
server sends FATAL 57P05 and closes. A request the client writes just then
is never read by the server, so it is safe to send again even if it writes
(unlike a request lost after the server got it: tests/faults/test_retry_safety.py).

The race is made certain, not waited for: a relay in front of the REAL
server holds the server's FATAL (and the close behind it) until the client
has written its next request, so the request is always written into the
closing session. Without the rule the caller got ``ConnectionError``
("outcome unknown"); with it the INSERT runs exactly once and succeeds.

A transaction's dedicated connection is never moved: when the server ends
its session (``idle_in_transaction_session_timeout``, FATAL 25P03) the
next request fails with ``ConnectionError`` saying why and that the
transaction is over, and a request written into the closing session (the
same held-FATAL race) fails saying it was not executed — never sent again.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

import iokernel
from iokernel import pg
from tests.faults.relay import Relay
from tests.servers import PostgresServer

pytestmark = pytest.mark.timeout(60)


class HoldFatal:
    """The server's chunk carrying SQLSTATE ``code`` (on connection ``conn``
    only, unless None) is held until the client sends its next chunk on
    that connection."""

    def __init__(self, code: bytes = b"C57P05", conn: int | None = 0) -> None:
        self.code, self.conn = code, conn
        self.held_on: int | None = None
        self.fatal_seen = threading.Event()
        self.released = threading.Event()

    def down(self, i: int, chunk: bytes) -> bytes:
        if self.conn in (None, i) and self.code in chunk and not self.fatal_seen.is_set():
            self.held_on = i
            self.fatal_seen.set()
            assert self.released.wait(20), "the client never wrote its request"
        return chunk

    def up(self, i: int, chunk: bytes) -> None:
        if self.fatal_seen.is_set() and i == self.held_on:
            self.released.set()


@pytest.fixture(scope="module")
def idle_server() -> Iterator[PostgresServer]:
    with PostgresServer(extra_config=["idle_session_timeout = '300ms'"]) as srv:
        yield srv


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_request_meeting_idle_close_is_sent_again(idle_server: PostgresServer,
                                                        kind: str) -> None:
    direct = pg.Client(idle_server.dsn())
    table = f"idle_close_{kind}"
    direct.execute(f"DROP TABLE IF EXISTS {table}")
    direct.execute(f"CREATE TABLE {table} (v int)")
    hold = HoldFatal()
    with Relay((idle_server.host, idle_server.port), delay=lambda i: 0.0,
               rewrite_down=hold.down, watch_up=hold.up) as relay:
        dsn = idle_server.dsn(sslmode="disable").replace(
            f":{idle_server.port}/", f":{relay.port}/")
        # One connection and no heartbeat: nothing else can be the request
        # that meets the close.
        opts = dict(connections=1, health_check_interval=None, timeout=20.0)
        insert = f"INSERT INTO {table} VALUES ($1)"
        if kind == "sync":
            db = pg.Client(dsn, **opts)
            assert db.fetchval("SELECT 1") == 1
            assert hold.fatal_seen.wait(20), "the server never closed the idle session"
            db.execute(insert, 7)
            db.close()
        else:
            adb = pg.AsyncClient(dsn, **opts)
            assert await adb.fetchval("SELECT 1") == 1
            assert hold.fatal_seen.wait(20), "the server never closed the idle session"
            await adb.execute(insert, 7)
            await adb.close()
        assert hold.released.is_set()
        assert relay.accepted >= 2  # it went on a new connection
    # Exactly once: the server never read the request on the closing session.
    assert direct.fetchval(f"SELECT array_agg(v) FROM {table}") == [7]
    direct.execute(f"DROP TABLE {table}")
    direct.close()


async def _until(cond: object, what: str) -> None:
    end = time.monotonic() + 20
    while not cond():  # type: ignore[operator]
        assert time.monotonic() < end, what
        await asyncio.sleep(0.02)


@pytest.fixture
def idle_table(idle_server: PostgresServer) -> Iterator[pg.Client]:
    direct = pg.Client(idle_server.dsn())
    direct.execute("DROP TABLE IF EXISTS idle_tx")
    direct.execute("CREATE TABLE idle_tx (v int)")
    yield direct
    direct.execute("DROP TABLE idle_tx")
    direct.close()


async def test_transaction_the_server_ended_fails_with_why(idle_server: PostgresServer,
                                                          idle_table: pg.Client) -> None:
    db = pg.AsyncClient(idle_server.dsn(), connections=1, health_check_interval=None,
                        timeout=20.0)
    try:
        with pytest.raises(iokernel.ConnectionError) as ei:
            async with db.transaction() as tx:
                await tx.execute("SET LOCAL idle_in_transaction_session_timeout = '200ms'")
                await tx.execute("INSERT INTO idle_tx VALUES (1)")
                await _until(lambda: db.stats()["dedicated_connections"] == 0,
                             "the server never ended the idle transaction")
                await tx.execute("INSERT INTO idle_tx VALUES (2)")
        msg = str(ei.value)
        assert "25P03" in msg and "transaction on it is over" in msg, msg
    finally:
        await db.close()
    assert idle_table.fetchval("SELECT count(*) FROM idle_tx") == 0  # rolled back


async def test_request_meeting_a_transactions_close_is_not_resent(
    idle_server: PostgresServer, idle_table: pg.Client
) -> None:
    hold = HoldFatal(b"C25P03", conn=None)
    with Relay((idle_server.host, idle_server.port), delay=lambda i: 0.0,
               rewrite_down=hold.down, watch_up=hold.up) as relay:
        dsn = idle_server.dsn(sslmode="disable").replace(
            f":{idle_server.port}/", f":{relay.port}/")
        db = pg.AsyncClient(dsn, connections=1, health_check_interval=None, timeout=20.0)
        try:
            with pytest.raises(iokernel.ConnectionError) as ei:
                async with db.transaction() as tx:
                    await tx.execute("SET LOCAL idle_in_transaction_session_timeout = '200ms'")
                    assert await asyncio.to_thread(hold.fatal_seen.wait, 20)
                    await tx.execute("INSERT INTO idle_tx VALUES (3)")
            msg = str(ei.value)
            assert "not executed" in msg and "dedicated connection" in msg, msg
            assert hold.released.is_set()
        finally:
            await db.close()
    assert idle_table.fetchval("SELECT count(*) FROM idle_tx") == 0  # never ran, never resent
