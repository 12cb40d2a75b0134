"""Blocking callers are woken a few at a time (the baton, src/kernel/baton.rs),
against a real redis-server: when one read brings the replies of many
blocked threads, two are woken and the others are queued, each woken when
a caller before it goes back to wait (or ends, or the watcher finds the
baton resting). Here every thread makes one call and ends, so nothing is
handed on by a next call: the queued ones must still all be woken, each
with its own reply. The replies are made to come together by pausing the
server's writes (CLIENT PAUSE WRITE) while the threads send SETs, and
unpausing once all are waiting; the baton's counts come from a test hook."""

from __future__ import annotations

import threading
import time
from typing import Any

import redis as redispy

from iokernel import _native
from iokernel import redis as iok

THREADS = 12


def counts() -> tuple[int, int, int, int]:
    return tuple(_native._baton_counts())  # type: ignore[attr-defined,no-any-return]


def wait_until(cond: Any, what: str, limit: float = 30.0) -> None:
    end = time.monotonic() + limit
    while not cond():
        assert time.monotonic() < end, f"gave up waiting for {what}"
        time.sleep(0.01)


def test_replies_that_come_together_wake_every_thread_with_its_own(redis_url: str) -> None:
    admin = redispy.Redis.from_url(redis_url)
    c = iok.Client(redis_url, timeout=60.0)
    c.ping()
    got: dict[int, Any] = {}

    def call(i: int) -> None:
        c.set(f"baton:{i}", f"v{i}")  # held by the server's pause
        got[i] = c.get(f"baton:{i}")

    before = counts()
    admin.client_pause(60_000, all=False)  # writes wait; CLIENT UNPAUSE still runs
    threads = [threading.Thread(target=call, args=(i,)) for i in range(THREADS)]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: c.stats()["outstanding"] >= THREADS, "every SET to be sent")
        assert not got, "nothing is answered while the server's writes are paused"
    finally:
        admin.client_unpause()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    assert got == {i: f"v{i}".encode() for i in range(THREADS)}
    wait_until(lambda: counts()[1] == 0, "the queue to empty")
    after = counts()
    waited = (after[2] - before[2]) + (after[3] - before[3])
    assert waited >= 1, f"no reply waited for the baton: {before} -> {after}"
    c.close()
    admin.close()
