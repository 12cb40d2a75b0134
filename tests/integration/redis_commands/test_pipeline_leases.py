"""A pipeline told ``watch()`` leases a connection of its own; the lease goes
back however the pipeline ends: ``execute()``, ``reset()``, the end of
``with``, an exception in user code, or the pipeline simply dropped (or
garbage-collected) without any of these.

Counted twice: the service's ``stats()["dedicated_connections"]`` and the
server's own client count (``INFO clients``, read with redis-py). A service
allows 64 dedicated connections, so without the lease coming back the 200
abandoned pipelines below would run out of them long before the end.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis as redispy

from iokernel import redis

ROUNDS = 200


@pytest.fixture
def witness(redis_url: str) -> Iterator[Any]:
    client = redispy.Redis.from_url(redis_url)
    yield client
    client.close()


def _wait(cond: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        gc.collect()
        time.sleep(0.02)


def _leases(client: Any) -> int:
    return int(client.stats()["dedicated_connections"])


def _server_clients(witness: Any) -> int:
    return int(witness.info("clients")["connected_clients"])


class Oops(Exception):
    pass


def _abandon_sync(c: redis.Client, i: int) -> None:
    """Each way a blocking pipeline can be left after watch()."""
    kind = i % 4
    if kind == 0:  # dropped
        p = c.pipeline()
        p.watch("k")
        p.get("k")
        del p
    elif kind == 1:  # an exception in user code, outside any with
        try:
            p = c.pipeline()
            p.watch("k")
            p.multi()
            p.set("k", i)
            raise Oops
        except Oops:
            pass
    elif kind == 2:  # an exception inside with: __exit__
        with pytest.raises(Oops), c.pipeline() as p:
            p.watch("k")
            raise Oops
    else:  # reset()
        p = c.pipeline()
        p.watch("k")
        p.reset()
        assert not p.watching


def test_abandoned_blocking_pipelines_give_their_leases_back(
    redis_url: str, witness: Any
) -> None:
    c = redis.Client(redis_url)
    assert c.ping() is True
    base_server = _server_clients(witness)
    for i in range(ROUNDS):
        _abandon_sync(c, i)
    _wait(lambda: _leases(c) == 0, "every lease back")
    _wait(lambda: _server_clients(witness) <= base_server, "the server's clients back")
    # The client still works, and so does WATCH on a fresh pipeline.
    with c.pipeline() as p:
        p.watch("k")
        p.multi()
        p.set("k", "done")
        assert p.execute() == [True]
    _wait(lambda: _leases(c) == 0, "the last lease back")
    assert witness.get("k") == b"done"
    c.close()


def test_garbage_collected_pipeline_in_a_cycle(redis_url: str) -> None:
    """A pipeline kept alive only by a reference cycle: its lease goes back
    when the cycle is collected."""
    c = redis.Client(redis_url)
    gc.disable()  # no collection before the count below
    try:
        for _ in range(3):
            p = c.pipeline()
            p.watch("k")
            p.me = p  # type: ignore[attr-defined]
            del p
        assert _leases(c) == 3  # unreachable, not yet collected
    finally:
        gc.enable()
    _wait(lambda: _leases(c) == 0, "the cycles collected")
    c.close()


async def test_abandoned_async_pipelines_give_their_leases_back(
    redis_url: str, witness: Any
) -> None:
    c = redis.AsyncClient(redis_url)
    assert await c.ping() is True
    base_server = _server_clients(witness)
    for i in range(ROUNDS):
        kind = i % 4
        if kind == 0:  # dropped
            p = c.pipeline()
            await p.watch("k")
            await p.get("k")
            del p
        elif kind == 1:  # reset() called but never awaited
            p = c.pipeline()
            await p.watch("k")
            with pytest.warns(RuntimeWarning, match="never awaited"):
                p.reset()
                del p
                gc.collect()
        elif kind == 2:  # an exception inside async with
            with pytest.raises(Oops):
                async with c.pipeline() as p:
                    await p.watch("k")
                    raise Oops
        else:
            p = c.pipeline()
            await p.watch("k")
            await p.reset()
    _wait(lambda: _leases(c) == 0, "every lease back")
    _wait(lambda: _server_clients(witness) <= base_server, "the server's clients back")
    async with c.pipeline() as p:
        await p.watch("k")
        p.multi()
        p.set("k", "done")
        assert await p.execute() == [True]
    assert witness.get("k") == b"done"
    await c.close()


def test_lease_goes_back_after_the_client_closed(redis_url: str) -> None:
    """The lease is given back to the service it came from, even when the
    client that made the pipeline was closed in between."""
    c = redis.Client(redis_url)
    other = redis.Client(redis_url)  # same URL: the same shared service
    p = c.pipeline()
    p.watch("k")
    assert _leases(other) == 1
    c.close()
    p.reset()
    _wait(lambda: _leases(other) == 0, "the lease back")
    other.close()
