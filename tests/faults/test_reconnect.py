"""Reconnecting after an outage: backoff that does not make callers wait.

During an outage in which every new connection is killed, the kernel backs
off between attempts (50 ms doubling to 5 s). While callers keep asking, the
step is capped (`WANTED_STEP`, 250 ms), so when the server is back the first
successful connection comes within 1 s, not after a 5 s step; a service
nobody calls backs off fully and does not hammer a dead server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

import iokernel
from iokernel import redis
from tests.faults.fakeserver import Close, ConnScript, FakeRedis
from tests.faults.test_redis_faults import seed

pytestmark = pytest.mark.timeout(60)

OUTAGE = 6.0  # long enough for the full backoff to reach 3.2 s steps


@pytest.fixture
def srv(no_leaks: Any) -> Iterator[FakeRedis]:
    with FakeRedis() as s:
        seed(s)
        yield s


def call_until(client: Any, end: float, pause: float = 0.02) -> tuple[int, int]:
    """Call in a loop until `end`; (successes, connection errors)."""
    ok = bad = 0
    for _ in range(100_000):  # bounded; the clock ends it first
        if time.monotonic() >= end:
            break
        try:
            client.get(b"key:1")
            ok += 1
        except iokernel.ConnectionError:
            bad += 1
        time.sleep(pause)
    return ok, bad


def test_outage_with_callers_recovers_within_a_second(srv: FakeRedis) -> None:
    client = redis.Client(srv.url(), timeout=2.0, connect_timeout=1.0)
    try:
        assert client.get(b"key:1") == srv.data[b"key:1"]
        srv.set_default(ConnScript(on_accept=Close()))  # every new connection dies
        srv.close_all()
        start = time.monotonic()
        ok, bad = call_until(client, start + OUTAGE / 2)
        assert ok == 0 and bad > 0
        before = srv.accepted
        call_until(client, start + OUTAGE)
        attempts = srv.accepted - before
        print(f"{attempts} connection attempts in the last {OUTAGE / 2:.0f}s of the outage")
        # Capped steps: every 125-250 ms (12-24 in 3 s). The full backoff
        # would make 1-3 by now.
        assert attempts >= 6, attempts

        srv.set_default(None)  # the server is back
        back = time.monotonic()
        for _ in range(10_000):
            try:
                assert client.get(b"key:1") == srv.data[b"key:1"]
                break
            except iokernel.ConnectionError:
                time.sleep(0.01)
            assert time.monotonic() - back < 5.0, "no recovery within 5 s"
        took = time.monotonic() - back
        print(f"first success {took:.3f}s after the server was reachable again")
        assert took <= 1.0, f"recovery took {took:.2f}s"
    finally:
        client.close()


def test_idle_outage_backs_off_fully(srv: FakeRedis) -> None:
    """Nobody calls: the attempts thin out to the full backoff (no hammering)."""
    client = redis.Client(srv.url(), timeout=2.0, connect_timeout=1.0)
    try:
        assert client.get(b"key:1") == srv.data[b"key:1"]
        srv.set_default(ConnScript(on_accept=Close()))
        before = srv.accepted
        srv.close_all()
        time.sleep(OUTAGE)  # the quiet period under test, not a synchronisation
        attempts = srv.accepted - before
        print(f"{attempts} connection attempts in a {OUTAGE:.0f}s idle outage")
        # Full backoff: steps of at least 25, 50, 100, ... 1600 ms; at most
        # 8 attempts fit in 6 s. Capped steps would make 24 or more.
        assert 1 <= attempts <= 12, attempts
        srv.set_default(None)
        for _ in range(1000):
            try:
                assert client.get(b"key:1") == srv.data[b"key:1"]
                break
            except iokernel.ConnectionError:
                time.sleep(0.01)
        else:
            raise AssertionError("client did not recover")
    finally:
        client.close()
