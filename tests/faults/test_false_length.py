"""A reply header that claims more than the server sends, under continuous load.

After `$536870000` (within the size limits) the replies that follow are read
as its payload, and callers who retry keep bytes flowing, so "the server went
silent" never happens. The kernel must still reset the clogged connection
within a bounded time: callers recover within their timeout + 2 s of the
injection, no reply ever reaches the wrong caller, and every failure is typed.

Redis: the scripted fake server sends the false header as the reply to the
first GET on a fresh connection, then answers normally. PostgreSQL: a relay in
front of the real server slips a false DataRow header (60 MiB) in before a
CommandComplete, once.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

import iokernel
from iokernel import pg, redis
from tests.faults.fakeserver import ConnScript, FakeRedis, Reply
from tests.faults.relay import Relay
from tests.faults.test_redis_faults import aarm, seed

pytestmark = pytest.mark.timeout(90)

T = 1.0  # every caller's timeout
RECOVER = T + 2.0  # callers recover within this long after the injection
RUN = T + 4.5  # how long the load runs after the injection


@dataclass
class Load:
    """Outcomes of calls made by `callers` tasks in a loop for RUN seconds."""

    start: float = 0.0
    oks: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered)
    fails: list[tuple[float, float, BaseException]] = field(default_factory=list)
    wrong: list[tuple[Any, Any]] = field(default_factory=list)

    def recovered_at(self) -> float:
        """Seconds after the start when the first call sent after the start
        succeeded and every call sent after it did too."""
        last_bad_sent = max((s for s, _, _ in self.fails), default=self.start)
        later = [a for s, a in self.oks if s > last_bad_sent]
        assert later, "no call succeeded after the last failure"
        return min(later) - self.start

    def report(self, what: str) -> str:
        kinds = sorted({type(e).__name__ for _, _, e in self.fails})
        return (f"{what}: {len(self.oks)} ok, {len(self.fails)} failed {kinds}, "
                f"recovered {self.recovered_at():.2f}s after the injection")


async def run_load(callers: int, call: Callable[[int], Awaitable[tuple[Any, Any]]]) -> Load:
    """`call(i)` returns (got, expected); runs until RUN seconds have passed."""
    load = Load(start=time.monotonic())
    end = load.start + RUN

    async def worker(w: int) -> None:
        for n in range(100_000):  # bounded; the clock ends it first
            sent = time.monotonic()
            if sent > end:
                return
            try:
                got, want = await call(w * 100_000 + n)
            except iokernel.Error as e:
                load.fails.append((sent, time.monotonic(), e))
                continue
            load.oks.append((sent, time.monotonic()))
            if got != want:
                load.wrong.append((got, want))

    await asyncio.gather(*(worker(w) for w in range(callers)))
    return load


def check(load: Load, what: str) -> None:
    print(load.report(what))
    assert not load.wrong, f"replies reached the wrong caller: {load.wrong[:3]}"
    for _, _, e in load.fails:
        assert isinstance(e, (iokernel.TimeoutError, iokernel.ConnectionError)), repr(e)
    assert load.fails, "the injected header had no effect: the test did not test anything"
    assert load.recovered_at() <= RECOVER, load.report(what)


# ------------------------------------------------------------------ redis
@pytest.mark.parametrize(
    ("header", "callers"),
    [(b"$536870000\r\n", 1), (b"$536870000\r\n", 8), (b"$536870000\r\n", 50),
     (b"*16000000\r\n", 8)],
    ids=["bulk-1", "bulk-8", "bulk-50", "array-8"],
)
async def test_redis_false_length_under_load(no_leaks: Any, header: bytes, callers: int) -> None:
    with FakeRedis() as srv:
        data = seed(srv)
        keys = sorted(data)
        c = redis.AsyncClient(srv.url(), timeout=T, connect_timeout=2.0)
        try:
            assert await c.get(keys[0]) == data[keys[0]]
            await aarm(srv, c, ConnScript.nth(1, Reply(header), only={"GET"}))

            async def call(n: int) -> tuple[Any, Any]:
                k = keys[n % len(keys)]
                return await c.get(k), data[k]

            check(await run_load(callers, call), f"redis {header!r}, {callers} callers")
        finally:
            await c.close()


# --------------------------------------------------------------- postgres
class FalseDataRow:
    """Rewrites the server -> client stream of a relay: once armed, slips a
    DataRow header claiming 60 MiB in before the next CommandComplete."""

    FALSE = b"D" + struct.pack("!I", 60 * 1024 * 1024)

    def __init__(self) -> None:
        self.armed = threading.Event()
        self.injected = threading.Event()
        self._lock = threading.Lock()
        self._bufs: dict[int, bytearray] = {}

    def __call__(self, conn: int, chunk: bytes) -> bytes:
        with self._lock:
            buf = self._bufs.setdefault(conn, bytearray())
            buf += chunk
            out = bytearray()
            while len(buf) >= 5:
                n = struct.unpack_from("!I", buf, 1)[0]
                if len(buf) < 1 + n:
                    break
                msg = bytes(buf[: 1 + n])
                del buf[: 1 + n]
                if msg[:1] == b"C" and self.armed.is_set() and not self.injected.is_set():
                    self.injected.set()
                    out += self.FALSE
                out += msg
            return bytes(out)


@pytest.fixture
def pg_relay(pg_server: Any) -> Iterator[tuple[Relay, FalseDataRow]]:
    rewrite = FalseDataRow()
    with Relay(("127.0.0.1", pg_server.port), delay=lambda i: 0.0,
               rewrite_down=rewrite) as r:
        yield r, rewrite


@pytest.mark.parametrize("callers", [1, 8, 50])
async def test_pg_false_datarow_length_under_load(
    pg_server: Any, pg_relay: tuple[Relay, FalseDataRow], callers: int
) -> None:
    relay, rewrite = pg_relay
    # sslmode=disable: the rewriter reads the stream as PostgreSQL messages
    # from its first byte (no SSLRequest answer).
    dsn = pg_server.dsn(sslmode="disable").replace(f":{pg_server.port}/", f":{relay.port}/")
    # One connection: with two, new requests go to the unclogged one and the
    # clogged one would never be put to the test.
    db = pg.AsyncClient(dsn, timeout=T, connect_timeout=2.0, connections=1)
    try:
        assert await db.fetchval("SELECT 1") == 1
        rewrite.armed.set()

        async def call(n: int) -> tuple[Any, Any]:
            return await db.fetchval("SELECT $1::int + 1", n % 1000), n % 1000 + 1

        load = await run_load(callers, call)
        assert rewrite.injected.is_set()
        check(load, f"postgres, {callers} callers")
    finally:
        await db.close()
