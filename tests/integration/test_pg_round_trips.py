"""What a statement's first use costs on the wire, counted message by message.

A relay (tests/faults/relay.py, passing every byte unchanged) sits in front
of the real server and parses what the client sends on each connection.
The rules checked (issue 11: "the Describe for a new statement ... costs at
most one round trip the first time a statement is seen"):

* a new statement costs one round trip more than a known one (two Syncs:
  the describe, then the execution), and is parsed once: the describe's
  Parse prepares it by name and the execution binds to it;
* a statement the service already knows costs no extra round trip on a
  connection that has not seen it (Parse rides with the Bind);
* concurrent first uses (tasks of a loop, threads) share one describe.

Counts, not timings: every message of a call has passed the relay before
the call returns (the relay records a chunk, then forwards it).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from iokernel import pg
from tests.faults.relay import Relay
from tests.servers import PostgresServer

pytestmark = pytest.mark.timeout(60)


class Wire:
    """Frontend messages per relayed connection, as (type, body)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buf: dict[int, bytearray] = {}
        self._started: set[int] = set()
        self.msgs: dict[int, list[tuple[str, bytes]]] = {}

    def up(self, i: int, chunk: bytes) -> None:
        with self._lock:
            b = self._buf.setdefault(i, bytearray())
            b += chunk
            out = self.msgs.setdefault(i, [])
            while True:
                if i not in self._started:  # the startup packet: no type byte
                    if len(b) < 4 or len(b) < int.from_bytes(b[:4], "big"):
                        return
                    del b[: int.from_bytes(b[:4], "big")]
                    self._started.add(i)
                    continue
                if len(b) < 5 or len(b) < 1 + int.from_bytes(b[1:5], "big"):
                    return
                n = 1 + int.from_bytes(b[1:5], "big")
                out.append((chr(b[0]), bytes(b[5:n])))
                del b[:n]

    def mark(self) -> dict[int, int]:
        with self._lock:
            return {i: len(m) for i, m in self.msgs.items()}

    def since(self, mark: dict[int, int]) -> dict[int, list[tuple[str, bytes]]]:
        with self._lock:
            return {i: m[mark.get(i, 0):] for i, m in self.msgs.items() if m[mark.get(i, 0):]}


def count(msgs: dict[int, list[tuple[str, bytes]]], sql: str) -> Counter[str]:
    """Over all connections: Parses of ``sql``, Describes of a statement,
    Syncs (one per round trip of a request), Binds."""
    c: Counter[str] = Counter()
    for conn in msgs.values():
        for kind, body in conn:
            if kind == "P" and body.split(b"\0")[1] == sql.encode():
                c["parse"] += 1
            elif kind == "D" and body[:1] == b"S":
                c["describe"] += 1
            elif kind == "S":
                c["sync"] += 1
            elif kind == "B":
                c["bind"] += 1
    return c


@pytest.fixture
def relayed(pg_server: PostgresServer) -> Iterator[tuple[str, Wire]]:
    wire = Wire()
    with Relay((pg_server.host, pg_server.port), delay=lambda i: 0.0,
               watch_up=wire.up) as relay:
        dsn = pg_server.dsn(sslmode="disable").replace(
            f":{pg_server.port}/", f":{relay.port}/")
        yield dsn, wire


# No heartbeats: every message on the wire is the test's.
OPTS: dict[str, Any] = dict(health_check_interval=None, timeout=30.0)


def fresh() -> str:
    return f"SELECT $1::int + {uuid.uuid4().int % 100000} AS v /* {uuid.uuid4().hex} */"


async def test_first_use_costs_one_round_trip_and_one_parse(
        relayed: tuple[str, Wire]) -> None:
    dsn, wire = relayed
    db = pg.Client(dsn, connections=1, **OPTS)
    adb = pg.AsyncClient(dsn, connections=1, **OPTS)
    try:
        for run in ("sync", "async"):
            sql = fresh()
            m = wire.mark()
            first = db.fetchval(sql, 1) if run == "sync" else await adb.fetchval(sql, 1)
            c = count(wire.since(m), sql)
            assert c == Counter(parse=1, describe=1, sync=2, bind=1), (run, c)
            m = wire.mark()
            again = db.fetchval(sql, 2) if run == "sync" else await adb.fetchval(sql, 2)
            c = count(wire.since(m), sql)
            assert c == Counter(sync=1, bind=1), (run, c)
            assert again == first + 1
    finally:
        db.close()
        await adb.close()


def test_known_statement_costs_no_round_trip_on_a_new_connection(
        relayed: tuple[str, Wire]) -> None:
    dsn, wire = relayed
    db = pg.Client(dsn, connections=1, **OPTS)
    try:
        sql = fresh()
        want = db.fetchval(sql, 5)
        with db.transaction() as tx:  # a connection that never saw it
            m = wire.mark()
            assert tx.fetchval(sql, 5) == want
            c = count(wire.since(m), sql)
        assert c == Counter(parse=1, sync=1, bind=1), c
    finally:
        db.close()


async def test_concurrent_first_uses_share_one_describe(relayed: tuple[str, Wire]) -> None:
    dsn, wire = relayed
    adb = pg.AsyncClient(dsn, connections=2, **OPTS)
    try:
        await adb.ready(timeout=20)
        sql = fresh()
        m = wire.mark()
        got = await asyncio.gather(*(adb.fetchval(sql, k) for k in range(20)))
        assert [g - got[0] for g in got] == list(range(20))
        c = count(wire.since(m), sql)
        # One describe, then the 20 executions: 21 round trips of requests.
        assert (c["describe"], c["sync"], c["bind"]) == (1, 21, 20), c
    finally:
        await adb.close()


def test_concurrent_first_uses_in_threads_share_one_describe(
        relayed: tuple[str, Wire]) -> None:
    dsn, wire = relayed
    db = pg.Client(dsn, connections=2, **OPTS)
    try:
        db.wait_ready(timeout=20)
        sql = fresh()
        n = 8
        start = threading.Barrier(n)
        got: dict[int, int] = {}

        def run(k: int) -> None:
            start.wait(20)
            got[k] = db.fetchval(sql, k)

        m = wire.mark()
        threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert sorted(got) == list(range(n))
        c = count(wire.since(m), sql)
        assert (c["describe"], c["sync"], c["bind"]) == (1, n + 1, n), c
    finally:
        db.close()


async def test_a_failing_first_use_gives_each_caller_its_own_error(
        relayed: tuple[str, Wire]) -> None:
    """A statement that does not parse: the first caller's describe fails
    and every caller still gets the server's error (none hangs)."""
    dsn, _ = relayed
    adb = pg.AsyncClient(dsn, connections=1, **OPTS)
    try:
        sql = f"SELECT $1::int FROM no_such_table_{uuid.uuid4().hex[:8]}"
        got = await asyncio.gather(*(adb.fetchval(sql, k) for k in range(5)),
                                   return_exceptions=True)
        assert all(isinstance(g, pg.PostgresError) and g.sqlstate == "42P01" for g in got), got
        assert await adb.fetchval("SELECT $1::int", 3) == 3  # the connection is fine
    finally:
        await adb.close()
