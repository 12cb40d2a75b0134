"""Which event loop an asyncio call belongs to, against a real Redis.

Native calls take the loop cached in ``iokernel._aio._last`` as the running
one when it is one of asyncio's own loops and its ``_thread_id`` is the
calling thread (without ``asyncio.get_running_loop()``, which costs a
``getpid`` system call on Python 3.11; src/python/core/completer.rs
``Completer::running``). These tests hold it to giving every call the loop
it runs in: loops one after another in one thread, one loop run twice,
loops running at the same time in several threads on one shared client,
and a loop that stopped in another thread."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from iokernel import _aio, redis

ROUNDS = 200


async def _gets(c: redis.AsyncClient, tag: str, alone: bool = True) -> list[Any]:
    loop = asyncio.get_running_loop()
    out = []
    for i in range(ROUNDS):
        out.append(await c.get(f"rl:{tag}"))
        if alone:  # no other thread moves the cache meanwhile
            assert _aio._last[0] is loop, "the last call was made in another loop's name"
        if i % 50 == 0:
            await asyncio.sleep(0)
    return out


async def _set(c: redis.AsyncClient, key: str, value: str) -> Any:
    return await c.set(key, value)


def test_loops_one_after_another_in_one_thread(redis_url: str) -> None:
    c = redis.AsyncClient(redis_url)
    for n in range(3):
        async def main(n: int = n) -> list[Any]:
            await c.set("rl:seq", str(n))
            return await _gets(c, "seq")

        assert asyncio.run(main()) == [str(n).encode()] * ROUNDS
    asyncio.run(c.close())


def test_one_loop_run_twice(redis_url: str) -> None:
    c = redis.AsyncClient(redis_url)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_set(c, "rl:twice", "a"))
        assert loop.run_until_complete(_gets(c, "twice")) == [b"a"] * ROUNDS
        other = asyncio.new_event_loop()  # runs in between: the cache moves to it
        try:
            assert other.run_until_complete(_gets(c, "twice")) == [b"a"] * ROUNDS
        finally:
            other.close()
        assert loop.run_until_complete(_gets(c, "twice")) == [b"a"] * ROUNDS
        loop.run_until_complete(c.close())
    finally:
        loop.close()


def test_loops_running_at_once_in_threads_share_a_client(redis_url: str) -> None:
    c = redis.AsyncClient(redis_url)
    results: dict[int, Any] = {}
    start = threading.Barrier(4)

    def worker(i: int) -> None:
        async def main() -> list[Any]:
            await c.set(f"rl:t{i}", f"v{i}")
            start.wait(timeout=30)  # all four loops run from here on
            return await _gets(c, f"t{i}", alone=False)

        try:
            results[i] = asyncio.run(main())
        except BaseException as e:  # reported below, with the thread's number
            results[i] = e

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    for i in range(4):
        assert results[i] == [f"v{i}".encode()] * ROUNDS, (i, results[i])
    asyncio.run(c.close())


def test_a_loop_stopped_in_another_thread_is_not_taken(redis_url: str) -> None:
    c = redis.AsyncClient(redis_url)
    done: list[Any] = []

    def elsewhere() -> None:
        async def main() -> None:
            await c.set("rl:stopped", "x")
            done.append(await c.get("rl:stopped"))

        asyncio.run(main())

    t = threading.Thread(target=elsewhere)
    t.start()
    t.join(60)
    assert done == [b"x"]
    stale = _aio._last[0]
    assert stale is not None and stale._thread_id is None  # it stopped

    async def here() -> tuple[Any, Any]:
        return await c.get("rl:stopped"), _aio._last[0] is asyncio.get_running_loop()

    assert asyncio.run(here()) == (b"x", True)
    asyncio.run(c.close())
