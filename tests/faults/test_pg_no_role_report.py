"""Servers that do not report their role (PostgreSQL before 14) are asked,
as libpq asks them.

Only PostgreSQL 15 is installed, so an older server is staged as a fault:
a relay in front of each REAL server (a primary and its streaming standby)
removes the ``in_hot_standby`` and ``default_transaction_read_only``
ParameterStatus messages from what the server sends and reports
``server_version`` 13.11, which is what a PostgreSQL 13 server's startup
looks like on the wire. The servers themselves answer every query.

With ``target_session_attrs`` other than ``any`` the client asks each new
connection ``pg_is_in_recovery()`` and ``transaction_read_only``, so the
roles are right and read-write traffic never reaches the standby; without
the question (``any``) the roles stay unknown.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from iokernel import pg
from tests.faults.relay import Relay
from tests.servers.postgres_standby import PostgresStandby

pytestmark = pytest.mark.timeout(120)
PORT = "SELECT inet_server_port()"
HIDDEN = (b"in_hot_standby", b"default_transaction_read_only")


class AsPg13:
    """Per relayed connection: the server's bytes, cut into messages (type
    byte, Int32 length), without the two reports and with server_version
    13.11; incomplete messages wait for the rest."""

    def __init__(self) -> None:
        self.buf: dict[int, bytes] = {}
        self.lock = threading.Lock()
        self.hidden = 0

    def down(self, i: int, chunk: bytes) -> bytes:
        with self.lock:
            data = self.buf.pop(i, b"") + chunk
            out = bytearray()
            while len(data) >= 5:
                n = struct.unpack("!I", data[1:5])[0]
                if len(data) < 1 + n:
                    break
                msg, data = data[:1 + n], data[1 + n:]
                if msg[:1] == b"S":
                    name = msg[5:].split(b"\0")[0]
                    if name in HIDDEN:
                        self.hidden += 1
                        continue
                    if name == b"server_version":
                        body = b"server_version\x0013.11\x00"
                        msg = b"S" + struct.pack("!I", 4 + len(body)) + body
                out += msg
            self.buf[i] = data
            return bytes(out)


@pytest.fixture
def pair(fresh_pg_server: Any) -> Iterator[tuple[Any, PostgresStandby, AsPg13, str]]:
    primary = fresh_pg_server
    sb = PostgresStandby(primary)
    sb.start()
    strip = AsPg13()
    try:
        sb.wait_streaming()
        with ExitStack() as stack:
            relays = [stack.enter_context(Relay((s.host, s.port), delay=lambda i: 0.0,
                                                rewrite_down=strip.down))
                      for s in (primary, sb)]
            hosts = ",".join(f"{r.host}:{r.port}" for r in relays)
            base = primary.dsn(sslmode="disable").replace(
                f"{primary.host}:{primary.port}", hosts)
            yield primary, sb, strip, base
    finally:
        sb.stop(cleanup=True)


async def test_roles_asked_when_not_reported(
    pair: tuple[Any, PostgresStandby, AsPg13, str]
) -> None:
    primary, standby, strip, base = pair
    sep = "&" if "?" in base else "?"
    rw = pg.AsyncClient(base + sep + "target_session_attrs=read-write", connections=1)
    sb = pg.AsyncClient(base + sep + "target_session_attrs=standby", connections=1)
    plain = pg.AsyncClient(base, connections=1)
    try:
        for c in (rw, sb, plain):
            await c.ready(30)
        assert strip.hidden > 0  # the reports were there, and removed
        # Asked: the URL order is primary, standby.
        assert [(e["role"], e["read_only"]) for e in rw.endpoints()] == [
            ("primary", False), ("replica", True)]
        assert [e["role"] for e in sb.endpoints()] == ["primary", "replica"]
        for _ in range(8):  # spread over both hosts, were the roles unknown
            assert await rw.fetchval(PORT) == primary.port
            assert await sb.fetchval(PORT) == standby.port
        await rw.execute("CREATE TABLE asked (n int)")
        # Not asked (target_session_attrs=any): nothing told the roles.
        assert [e["role"] for e in plain.endpoints()] == ["unknown", "unknown"]
        assert await plain.fetchval("SHOW server_version") != "13.11"  # the real server
    finally:
        for c in (rw, sb, plain):
            await c.close()
