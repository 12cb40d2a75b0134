"""Per-call ``idempotent=True`` and the bound on resends.

As in test_retry_safety.py, a relay in front of the REAL server forwards
the request, swallows the server's reply and closes both sides, so the
server executes the request while the client never hears back:

* a write marked ``idempotent=True`` on the call (the client is not) is
  sent again and answered; the server ran it twice (the caller's promise);
  the same write without the mark fails "outcome unknown" and ran once;
* with a relay that does this on *every* connection, an idempotent write
  with no deadline (``timeout=None``) is sent again at most 3 times, then
  fails with ``ConnectionError`` (reason ``resend_limit``) saying so: the
  server ran it exactly 4 times, never more.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import iokernel
from iokernel import pg, redis
from tests.faults.relay import Cut, Relay

pytestmark = pytest.mark.timeout(60)


class CutEach:
    """Once the client sent a chunk containing ``marker`` on a connection,
    the server's next chunk there is swallowed and the connection closed:
    on every connection with ``every``, else once until ``rearm()``."""

    def __init__(self, marker: bytes, every: bool = False) -> None:
        self.marker, self.every = marker, every
        self.lock = threading.Lock()
        self.armed: set[int] = set()
        self.cuts = 0
        self.spent = False

    def rearm(self) -> None:
        with self.lock:
            self.spent = False

    def up(self, i: int, chunk: bytes) -> None:
        with self.lock:
            if self.marker in chunk and (self.every or not self.spent):
                self.armed.add(i)
                self.spent = True

    def down(self, i: int, chunk: bytes) -> bytes:
        with self.lock:
            if i in self.armed:
                self.armed.discard(i)
                self.cuts += 1
                raise Cut
        return chunk


@contextmanager
def relayed(server: Any, cut: CutEach, url: str) -> Iterator[str]:
    """``url`` with the server's port replaced by a cutting relay's."""
    with Relay((server.host, server.port), delay=lambda i: 0.0,
               rewrite_down=cut.down, watch_up=cut.up) as r:
        yield url.replace(f":{server.port}/", f":{r.port}/")


def test_redis_call_marked_idempotent_is_resent(redis_server: Any, redis_url: str) -> None:
    cut = CutEach(b"\r\nidem:")
    direct = redis.Client(redis_url)
    with relayed(redis_server, cut, redis_server.url()) as url:
        c = redis.Client(url, timeout=5.0, connect_timeout=2.0, health_check_interval=None)
        try:
            assert c.execute("INCR", "idem:a", idempotent=True) == 2
            assert cut.cuts == 1 and direct.get("idem:a") == b"2"
            cut.rearm()
            with pytest.raises(iokernel.ConnectionError) as ei:
                c.execute("INCR", "idem:b")
            assert cut.cuts == 2 and "outcome is unknown" in str(ei.value)
            assert direct.get("idem:b") == b"1"
        finally:
            c.close()
            direct.close()


def test_redis_idempotent_resends_are_bounded(redis_server: Any, redis_url: str) -> None:
    cut = CutEach(b"\r\nidem:", every=True)
    direct = redis.Client(redis_url)
    with relayed(redis_server, cut, redis_server.url()) as url:
        c = redis.Client(url, timeout=None, connect_timeout=2.0, health_check_interval=None,
                         idempotent=True)
        try:
            with pytest.raises(iokernel.ConnectionError) as ei:
                c.incr("idem:c")
            assert ei.value.reason == "resend_limit" and ei.value.stage == "written"
            assert "at most 3 resends" in str(ei.value)
            assert direct.get("idem:c") == b"4"  # sent 4 times, never more
            assert cut.cuts == 4
        finally:
            c.close()
            direct.close()


@pytest.fixture
def idem_table(pg_server: Any, pg_dsn: str) -> Iterator[pg.Client]:
    direct = pg.Client(pg_dsn)
    direct.execute("DROP TABLE IF EXISTS idem_t")
    direct.execute("CREATE TABLE idem_t (n int)")
    yield direct
    direct.execute("DROP TABLE IF EXISTS idem_t")
    direct.close()


def _count(direct: pg.Client, n: int) -> Any:
    return direct.fetchval(f"SELECT count(*) FROM idem_t WHERE n = {n}")


def test_pg_call_marked_idempotent_is_resent(pg_server: Any, idem_table: pg.Client) -> None:
    cut = CutEach(b"idem_t")
    with relayed(pg_server, cut, pg_server.dsn()) as dsn:
        db = pg.Client(dsn, timeout=5.0, connect_timeout=2.0, connections=1,
                       health_check_interval=None)
        try:
            assert db.execute("INSERT INTO idem_t VALUES (1)", idempotent=True) == "INSERT 0 1"
            assert cut.cuts == 1 and _count(idem_table, 1) == 2
            cut.rearm()
            with pytest.raises(iokernel.ConnectionError) as ei:
                db.execute("INSERT INTO idem_t VALUES (2)")
            assert cut.cuts == 2 and "outcome is unknown" in str(ei.value)
            assert _count(idem_table, 2) == 1
        finally:
            db.close()


async def test_pg_idempotent_resends_are_bounded(pg_server: Any, idem_table: pg.Client) -> None:
    cut = CutEach(b"idem_t", every=True)
    with relayed(pg_server, cut, pg_server.dsn()) as dsn:
        db = pg.AsyncClient(dsn, timeout=None, connect_timeout=2.0, connections=1,
                            health_check_interval=None)
        try:
            with pytest.raises(iokernel.ConnectionError) as ei:
                await db.execute("INSERT INTO idem_t VALUES (3)", idempotent=True)
            assert ei.value.reason == "resend_limit" and ei.value.stage == "written"
            assert "at most 3 resends" in str(ei.value)
            assert _count(idem_table, 3) == 4  # sent 4 times, never more
            assert cut.cuts == 4
        finally:
            await db.close()
