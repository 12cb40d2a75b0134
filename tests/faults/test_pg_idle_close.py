"""A request that meets the server's close of an idle session is sent again.

PostgreSQL's ``idle_session_timeout`` ends a session that sat idle: the
server sends FATAL 57P05 and closes. A request the client writes just then
is never read by the server, so it is safe to send again even if it writes
(unlike a request lost after the server got it: tests/faults/test_retry_safety.py).

The race is made certain, not waited for: a relay in front of the REAL
server holds the server's FATAL (and the close behind it) until the client
has written its next request, so the request is always written into the
closing session. Without the rule the caller got ``ConnectionError``
("outcome unknown"); with it the INSERT runs exactly once and succeeds.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from iokernel import pg
from tests.faults.relay import Relay
from tests.servers import PostgresServer

pytestmark = pytest.mark.timeout(60)


class HoldFatal:
    """On the first connection: the server's chunk carrying SQLSTATE 57P05
    is held until the client sends its next chunk."""

    def __init__(self) -> None:
        self.fatal_seen = threading.Event()
        self.released = threading.Event()

    def down(self, i: int, chunk: bytes) -> bytes:
        if i == 0 and b"C57P05" in chunk:
            self.fatal_seen.set()
            assert self.released.wait(20), "the client never wrote its request"
        return chunk

    def up(self, i: int, chunk: bytes) -> None:
        if i == 0 and self.fatal_seen.is_set():
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
