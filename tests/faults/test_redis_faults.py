"""Faults against iokernel's Redis clients, driven by the scripted fake server.

Every fault must end in a TYPED iokernel error within a bounded time (never a
hang), no reply may reach the wrong caller, and once the server behaves again
the same client works. Both the blocking and the asyncio client.

Scripts count only GET (only={"GET"}) so that the client's handshake (HELLO),
heartbeat PINGs and SETs never consume a scripted fault.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

import iokernel
from iokernel import redis
from tests.faults.fakeserver import (
    Close,
    ConnScript,
    CutAndClose,
    Delay,
    FakeRedis,
    Garbage,
    HalfClose,
    Reply,
    Reset,
    Stall,
)
from tests.servers import dead_port

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 0.5  # per-command timeout for stall tests
FAST = 3.0  # a fault must surface within this many seconds

GET = frozenset({"GET"})
# A write: a connection lost with it out fails it (a read would be sent again).
INCR = frozenset({"INCR"})
OVERSIZED = b"$999999999999\r\n"


def seed(srv: FakeRedis, n: int = 32) -> dict[bytes, bytes]:
    """Distinct key -> value pairs, so a reply delivered to the wrong caller shows."""
    data = {b"key:%d" % i: b"value:%d:%s" % (i, b"x" * i) for i in range(n)}
    srv.data.update(data)
    return data


@pytest.fixture
def srv(no_leaks: Any) -> Iterator[FakeRedis]:
    with FakeRedis() as s:
        seed(s)
        yield s


@pytest.fixture
def client(srv: FakeRedis) -> Iterator[Any]:
    c = redis.Client(srv.url(), timeout=5.0, connect_timeout=2.0)
    yield c
    c.close()


@pytest.fixture
async def aclient(srv: FakeRedis) -> Any:
    c = redis.AsyncClient(srv.url(), timeout=5.0, connect_timeout=2.0)
    yield c
    await c.close()


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.monotonic()
    try:
        out = fn()
    except BaseException as e:
        out = e
    return out, time.monotonic() - t0


async def atimed(coro: Any) -> tuple[Any, float]:
    t0 = time.monotonic()
    try:
        out = await coro
    except BaseException as e:
        out = e
    return out, time.monotonic() - t0


def assert_healthy(client: Any, srv: FakeRedis, rounds: int = 3) -> None:
    """The client answers every key with its own value (after a fault)."""
    for i in range(rounds):
        k = b"key:%d" % (i + 1)
        assert client.get(k) == srv.data[k]
    assert client.execute("PING") in (b"PONG", "PONG")


async def assert_healthy_async(client: Any, srv: FakeRedis, n: int = 16) -> None:
    keys = [b"key:%d" % i for i in range(n)]
    got = await asyncio.gather(*(client.get(k) for k in keys))
    assert got == [srv.data[k] for k in keys]


def arm(srv: FakeRedis, client: Any, script: ConnScript) -> None:
    """Give the client a fresh connection that runs `script`.

    Closes the live connection; the client reconnects (the new connection
    takes the script) and a PING, which scripts with only=GET never count,
    proves it is on the new one. Faults then hit deterministically.
    """
    before = srv.accepted
    srv.script(script)
    srv.close_all()
    deadline = time.monotonic() + 10.0
    while True:
        try:
            client.execute("PING")
            if srv.accepted > before:
                return
        except iokernel.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("client did not reconnect within 10s")
        time.sleep(0.02)


async def aarm(srv: FakeRedis, client: Any, script: ConnScript) -> None:
    before = srv.accepted
    srv.script(script)
    srv.close_all()
    deadline = time.monotonic() + 10.0
    while True:
        try:
            await client.execute("PING")
            if srv.accepted > before:
                return
        except iokernel.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("client did not reconnect within 10s")
        await asyncio.sleep(0.02)


# ------------------------------------------------------------------ sync
@pytest.mark.parametrize(
    ("action", "error"),
    [
        pytest.param(Garbage(), iokernel.ProtocolError, id="garbage"),
        pytest.param(Reply(OVERSIZED), iokernel.ProtocolError, id="oversized-bulk-header"),
        pytest.param(Reply(b"*99999999999\r\n"), iokernel.ProtocolError, id="oversized-array"),
        pytest.param(CutAndClose(), iokernel.ConnectionError, id="cut-mid-frame"),
        pytest.param(Close(), iokernel.ConnectionError, id="peer-closes"),
        pytest.param(Reset(), iokernel.ConnectionError, id="peer-resets"),
        pytest.param(HalfClose(), iokernel.ConnectionError, id="half-close"),
    ],
)
def test_sync_fault_is_typed_then_recovers(
    srv: FakeRedis, client: Any, action: Any, error: type[Exception]
) -> None:
    assert client.get(b"key:0") == srv.data[b"key:0"]  # connected and working
    arm(srv, client, ConnScript.nth(1, action, only=INCR))
    out, took = timed(lambda: client.execute("INCR", b"n"))
    assert isinstance(out, error), f"expected {error.__name__}, got {out!r}"
    assert isinstance(out, iokernel.Error)
    assert took < FAST
    assert_healthy(client, srv)


def test_sync_cut_mid_frame_of_large_reply(srv: FakeRedis, client: Any) -> None:
    srv.data[b"big"] = b"B" * 200_000
    assert client.get(b"key:1") == srv.data[b"key:1"]
    arm(srv, client, ConnScript.nth(1, CutAndClose(keep=100_000), only=GET))
    out, took = timed(lambda: client.get(b"big"))
    # A read: sent again on the next connection, whole this time.
    assert out == srv.data[b"big"], repr(out)[:200]
    assert took < FAST
    assert client.get(b"big") == srv.data[b"big"]
    assert_healthy(client, srv)


def test_sync_stall_times_out_and_late_reply_is_dropped(srv: FakeRedis, client: Any) -> None:
    assert client.get(b"key:1") == srv.data[b"key:1"]
    arm(srv, client, ConnScript.nth(1, Stall(), only=GET))
    # the client reconnects; its next GET stalls on the new connection
    out, took = timed(lambda: client.execute("GET", b"key:2", timeout=TIMEOUT))
    assert isinstance(out, iokernel.TimeoutError), repr(out)
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 2.0
    # the server wakes up and answers the stalled GET late: nobody may get it
    srv.heal()
    assert_healthy(client, srv, rounds=8)


def test_sync_delayed_reply_goes_to_its_own_caller(srv: FakeRedis, client: Any) -> None:
    """Caller A times out on a slow reply. Callers pipelined behind it on the
    same connection get their own replies or a ConnectionError (the kernel may
    reset a connection whose head request timed out), never A's reply or each
    other's; afterwards the client works."""
    assert client.get(b"key:0") == srv.data[b"key:0"]
    arm(srv, client, ConnScript.nth(1, Delay(1.0), only=GET))
    results: dict[int, Any] = {}

    def caller(i: int) -> None:
        t = TIMEOUT if i == 0 else 10.0
        try:
            results[i] = client.execute("GET", b"key:%d" % i, timeout=t)
        except iokernel.Error as e:
            results[i] = e

    first = threading.Thread(target=caller, args=(0,))
    first.start()
    srv.wait_for(lambda: len(srv.commands_named("GET")) >= 2, what="delayed GET received")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(caller, range(1, 9)))
    first.join(10)
    assert isinstance(results[0], iokernel.TimeoutError), results[0]
    for i in range(1, 9):
        ok = results[i] == srv.data[b"key:%d" % i]
        assert ok or isinstance(results[i], iokernel.ConnectionError), (i, results[i])
    assert_healthy(client, srv)


def test_sync_stall_without_heal(srv: FakeRedis, client: Any) -> None:
    """A server that never answers again: a typed timeout, then the client gets
    back to a working connection by itself (bounded)."""
    assert client.get(b"key:0") == srv.data[b"key:0"]
    arm(srv, client, ConnScript.nth(1, Stall(), only=GET))
    out, took = timed(lambda: client.execute("GET", b"key:1", timeout=TIMEOUT))
    assert isinstance(out, iokernel.TimeoutError), repr(out)
    assert took < TIMEOUT + 2.0
    eventually_healthy(client, srv)


def eventually_healthy(client: Any, srv: FakeRedis, within: float = 10.0) -> None:
    """Bounded wait for the client to reconnect; errors on the way must be typed."""
    deadline = time.monotonic() + within
    while True:
        try:
            assert client.get(b"key:3") == srv.data[b"key:3"]
            break
        except iokernel.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert_healthy(client, srv)


def test_sync_server_dead_at_connect_fails_fast() -> None:
    port = dead_port()
    c = redis.Client(f"redis://127.0.0.1:{port}/0", timeout=10.0, connect_timeout=5.0)
    try:
        for _ in range(2):
            out, took = timed(lambda: c.get(b"k"))
            assert isinstance(out, iokernel.ConnectionError), repr(out)
            assert took < 2.0, f"refused connect took {took:.2f}s"
            assert str(port) in str(out)  # the message says where
    finally:
        c.close()


def test_sync_server_comes_up_later() -> None:
    """Dead at first, then a server appears on that port: the client recovers."""
    port = dead_port()
    c = redis.Client(f"redis://127.0.0.1:{port}/0", timeout=5.0, connect_timeout=2.0)
    try:
        out, _ = timed(lambda: c.get(b"key:0"))
        assert isinstance(out, iokernel.ConnectionError), repr(out)
        with FakeRedis(port=port) as srv:
            seed(srv)
            eventually_healthy(c, srv)
    finally:
        c.close()


def test_sync_close_on_accept_until_healed(srv: FakeRedis, client: Any) -> None:
    assert client.get(b"key:0") == srv.data[b"key:0"]
    srv.set_default(ConnScript(on_accept=Close()))
    srv.close_all()
    out, took = timed(lambda: client.get(b"key:1"))
    assert isinstance(out, iokernel.ConnectionError), repr(out)
    assert took < FAST + 5.0  # connect_timeout 2s bounds the worst case
    srv.heal()
    eventually_healthy(client, srv)


def test_sync_garbage_during_handshake(srv: FakeRedis, client: Any) -> None:
    assert client.get(b"key:0") == srv.data[b"key:0"]
    # every new connection answers the handshake (HELLO) with garbage
    srv.set_default(ConnScript(handshake=False, actions=[Garbage()]))
    srv.close_all()
    for _ in range(3):
        out, took = timed(lambda: client.get(b"key:1"))
        assert isinstance(out, (iokernel.ProtocolError, iokernel.ConnectionError)), repr(out)
        assert took < FAST
    assert srv.accepted >= 2
    srv.heal()
    eventually_healthy(client, srv)


def test_sync_server_error_reply_keeps_connection(srv: FakeRedis, client: Any) -> None:
    assert client.get(b"key:0") == srv.data[b"key:0"]
    arm(srv, client, ConnScript.nth(2, Reply(b"-ERR scripted failure\r\n"), only=GET))
    assert client.get(b"key:1") == srv.data[b"key:1"]
    accepted = srv.accepted
    with pytest.raises(redis.ResponseError, match="scripted failure"):
        client.get(b"key:2")
    assert_healthy(client, srv)
    assert srv.accepted == accepted  # a server error does not cost the connection


def test_sync_many_threads_cut_midway_no_misdelivery(srv: FakeRedis, client: Any) -> None:
    """Replies cut after the 20th GET: every caller gets its own value or a
    ConnectionError, never another caller's value."""
    assert client.get(b"key:0") == srv.data[b"key:0"]
    arm(srv, client, ConnScript.nth(20, CutAndClose(), only=GET))

    def caller(i: int) -> Any:
        k = b"key:%d" % (i % 32)
        try:
            return k, client.get(k)
        except iokernel.Error as e:
            return k, e

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(caller, range(200)))
    for k, v in results:
        assert v == srv.data[k] or isinstance(v, iokernel.ConnectionError), (k, v)
    assert_healthy(client, srv)


# ----------------------------------------------------------------- async
@pytest.mark.parametrize(
    ("action", "error"),
    [
        pytest.param(Garbage(), iokernel.ProtocolError, id="garbage"),
        pytest.param(Reply(OVERSIZED), iokernel.ProtocolError, id="oversized-bulk-header"),
        pytest.param(CutAndClose(), iokernel.ConnectionError, id="cut-mid-frame"),
        pytest.param(Close(), iokernel.ConnectionError, id="peer-closes"),
        pytest.param(HalfClose(), iokernel.ConnectionError, id="half-close"),
    ],
)
async def test_async_fault_is_typed_then_recovers(
    srv: FakeRedis, aclient: Any, action: Any, error: type[Exception]
) -> None:
    assert await aclient.get(b"key:0") == srv.data[b"key:0"]
    await aarm(srv, aclient, ConnScript.nth(1, action, only=INCR))
    out, took = await atimed(aclient.execute("INCR", b"n"))
    assert isinstance(out, error), f"expected {error.__name__}, got {out!r}"
    assert took < FAST
    await assert_healthy_async(aclient, srv)


async def test_async_stall_times_out_and_late_reply_is_dropped(
    srv: FakeRedis, aclient: Any
) -> None:
    assert await aclient.get(b"key:1") == srv.data[b"key:1"]
    await aarm(srv, aclient, ConnScript.nth(1, Stall(), only=GET))
    out, took = await atimed(aclient.execute("GET", b"key:2", timeout=TIMEOUT))
    assert isinstance(out, iokernel.TimeoutError), repr(out)
    assert TIMEOUT * 0.8 <= took < TIMEOUT + 2.0
    srv.heal()
    await assert_healthy_async(aclient, srv)


async def test_async_delayed_reply_goes_to_its_own_caller(
    srv: FakeRedis, aclient: Any
) -> None:
    assert await aclient.get(b"key:0") == srv.data[b"key:0"]
    await aarm(srv, aclient, ConnScript.nth(1, Delay(1.0), only=GET))
    slow = asyncio.ensure_future(aclient.execute("GET", b"key:0", timeout=TIMEOUT))
    await asyncio.sleep(0.05)
    rest = [aclient.execute("GET", b"key:%d" % i, timeout=10.0) for i in range(1, 17)]
    got = await asyncio.gather(slow, *rest, return_exceptions=True)
    assert isinstance(got[0], iokernel.TimeoutError), got[0]
    for i, v in enumerate(got[1:], start=1):
        assert v == srv.data[b"key:%d" % i] or isinstance(v, iokernel.ConnectionError), (i, v)
    await assert_healthy_async(aclient, srv)


async def test_async_cancelled_caller_does_not_shift_replies(
    srv: FakeRedis, aclient: Any
) -> None:
    assert await aclient.get(b"key:0") == srv.data[b"key:0"]
    await aarm(srv, aclient, ConnScript.nth(1, Delay(0.5), only=GET))
    slow = asyncio.ensure_future(aclient.get(b"key:0"))
    await asyncio.sleep(0.05)
    slow.cancel()
    got = await asyncio.gather(*(aclient.get(b"key:%d" % i) for i in range(1, 17)))
    assert got == [srv.data[b"key:%d" % i] for i in range(1, 17)]
    with pytest.raises(asyncio.CancelledError):
        await slow


async def test_async_server_dead_at_connect_fails_fast() -> None:
    port = dead_port()
    c = redis.AsyncClient(f"redis://127.0.0.1:{port}/0", timeout=10.0, connect_timeout=5.0)
    try:
        out, took = await atimed(c.get(b"k"))
        assert isinstance(out, iokernel.ConnectionError), repr(out)
        assert took < 2.0
    finally:
        await c.close()


async def test_async_many_tasks_cut_midway_no_misdelivery(
    srv: FakeRedis, aclient: Any
) -> None:
    assert await aclient.get(b"key:0") == srv.data[b"key:0"]
    await aarm(srv, aclient, ConnScript.nth(50, CutAndClose(), only=GET))
    keys = [b"key:%d" % (i % 32) for i in range(300)]
    got = await asyncio.wait_for(
        asyncio.gather(*(aclient.get(k) for k in keys), return_exceptions=True), 20
    )
    for k, v in zip(keys, got):
        assert v == srv.data[k] or isinstance(v, iokernel.ConnectionError), (k, v)
    await assert_healthy_async(aclient, srv)
