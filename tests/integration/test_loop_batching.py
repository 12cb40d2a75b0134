"""Loop batching (src/python/core/cork.rs), against real Redis and
PostgreSQL: of the requests asyncio tasks make in one turn of the event
loop, the first is handed to the kernel at once and the others together
(16 at a time, the rest when the turn ends), so they go out in a write or
two per connection — counted by the service's ``writes`` — in the order
they were made, each reply reaching its own caller, a caller cancelled
while its request was held included. ``iokernel.configure(
loop_batching=False)`` hands each over at once.

Each test makes its requests from tasks that run in one turn (tasks made
together, started by the loop in order), which asyncio guarantees; the
counts asserted do not depend on timing, except where a bound is said."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

import iokernel
from iokernel import pg, redis
from tests.servers import PostgresServer, RedisServer


@pytest.fixture(autouse=True)
def _batching_on() -> Iterator[None]:
    before = iokernel.configure()["loop_batching"]
    iokernel.configure(loop_batching=True)
    yield
    iokernel.configure(loop_batching=before)


def client(url: str) -> redis.AsyncClient:
    # No health checks: a PING would be a write of its own.
    return redis.AsyncClient(url, health_check_interval=None)


async def one_turn(calls: list[Callable[[], Awaitable[Any]]]) -> list[Any]:
    """Run every call from a task of its own; the tasks start in one turn."""
    tasks = [asyncio.ensure_future(_call(c)) for c in calls]
    return await asyncio.gather(*tasks)


async def _call(c: Callable[[], Awaitable[Any]]) -> Any:
    return await c()


def writes(c: Any) -> int:
    return int(c.stats()["writes"])


def test_a_turns_requests_go_out_in_one_write(redis_url: str) -> None:
    async def main() -> tuple[list[Any], int, int]:
        c = client(redis_url)
        try:
            await c.mset({f"lb:{i}": f"v{i}" for i in range(12)})
            w0, r0 = writes(c), c.stats()["requests"]
            got = await one_turn([lambda i=i: c.get(f"lb:{i}") for i in range(12)])
            return got, writes(c) - w0, c.stats()["requests"] - r0
        finally:
            await c.close()

    got, w, r = asyncio.run(main())
    assert got == [f"v{i}".encode() for i in range(12)]
    assert r == 12
    # The first at once, the 11 others at the turn's end: two writes, or
    # one if the first was still waiting for the writer when they came.
    assert 1 <= w <= 2, f"12 requests of one turn took {w} writes"


def test_more_than_16_go_in_groups_and_each_reply_finds_its_caller(redis_url: str) -> None:
    n = 50

    async def main() -> tuple[list[Any], int]:
        c = client(redis_url)
        try:
            await c.mset({f"lb:{i}": f"v{i}" for i in range(n)})
            w0 = writes(c)
            got = await one_turn([lambda i=i: c.get(f"lb:{i}") for i in range(n)])
            return got, writes(c) - w0
        finally:
            await c.close()

    got, w = asyncio.run(main())
    assert got == [f"v{i}".encode() for i in range(n)]
    # The first, then groups of 16, 16, 16 and 1; the kernel may take two
    # groups in one turn of its own (fewer writes), never more than one
    # write per group.
    assert 1 <= w <= 5, f"{n} requests of one turn took {w} writes"


def test_order_of_a_turn_is_kept_across_commands_services_and_pipelines(
    redis_server: RedisServer,
) -> None:
    async def main() -> list[Any]:
        a, b = client(redis_server.url(db=0)), client(redis_server.url(db=1))
        try:
            await a.delete("lb:o")
            await b.delete("lb:o")
            p = a.pipeline(transaction=False)
            p.incr("lb:o")
            p.get("lb:o")
            calls: list[Callable[[], Awaitable[Any]]] = [
                lambda: a.set("lb:o", 1),
                lambda: b.set("lb:o", "b1"),
                lambda: a.get("lb:o"),
                lambda: a.incr("lb:o"),
                lambda: b.get("lb:o"),
                p.execute,
                lambda: a.get("lb:o"),
                lambda: b.append("lb:o", "+"),
                lambda: b.get("lb:o"),
            ]
            return await one_turn(calls)
        finally:
            await a.close()
            await b.close()

    got = asyncio.run(main())
    assert got == [True, True, b"1", 2, b"b1", [3, b"3"], b"3", 3, b"b1+"]


def test_a_caller_cancelled_while_its_request_is_held(redis_url: str) -> None:
    async def main() -> tuple[list[Any], bool, Any]:
        c = client(redis_url)
        try:
            await c.mset({f"lb:{i}": f"v{i}" for i in range(10)})
            # Each call submits at once; all but the first are held (this
            # turn has not ended).
            tasks = [asyncio.ensure_future(c.get(f"lb:{i}")) for i in range(10)]
            tasks[4].cancel()
            done = await asyncio.gather(*tasks, return_exceptions=True)
            after = await c.get("lb:9")
            return done, tasks[4].cancelled(), after
        finally:
            await c.close()

    done, cancelled, after = asyncio.run(main())
    assert cancelled and isinstance(done[4], asyncio.CancelledError)
    assert [d for i, d in enumerate(done) if i != 4] == [
        f"v{i}".encode() for i in range(10) if i != 4
    ]
    assert after == b"v9"


def test_postgres_requests_of_a_turn_share_a_write(pg_server: PostgresServer) -> None:
    async def main() -> tuple[list[Any], int]:
        db = pg.AsyncClient(pg_server.dsn(application_name="iok-loop-batching"),
                            connections=1, timeout=30.0)
        try:
            await db.fetchval("SELECT $1::int * 2", 0)  # described and prepared
            w0 = writes(db)
            got = await one_turn([lambda i=i: db.fetchval("SELECT $1::int * 2", i)
                                  for i in range(10)])
            return got, writes(db) - w0
        finally:
            await db.close()

    got, w = asyncio.run(main())
    assert got == [i * 2 for i in range(10)]
    assert 1 <= w <= 2, f"10 queries of one turn took {w} writes"


def _answered_while_the_loop_is_blocked(url: str) -> tuple[list[Any], int]:
    """12 GETs submitted; then this coroutine blocks the loop in the same
    turn, until the kernel has answered them all (up to 10 s), or with
    batching on until it has answered the first (up to 10 s) and 0.3 s
    more. Returns the values and how many were unanswered."""

    async def main() -> tuple[list[Any], int]:
        c = client(url)
        try:
            await c.mset({f"lb:{i}": f"v{i}" for i in range(12)})
            base = c.stats()["outstanding"]
            # Each call submits at once; the loop's turn goes on (blocked
            # below), so requests held for its end stay held.
            tasks = [asyncio.ensure_future(c.get(f"lb:{i}")) for i in range(12)]
            left = c.stats()["outstanding"] - base
            held = 11 if iokernel.configure()["loop_batching"] else 0
            end = time.monotonic() + 10.0
            while left > held and time.monotonic() < end:
                time.sleep(0.01)  # blocks the loop on purpose
                left = c.stats()["outstanding"] - base
            time.sleep(0.3 if held else 0)  # would the held ones go?
            left = c.stats()["outstanding"] - base
            return await asyncio.gather(*tasks), left
        finally:
            await c.close()

    return asyncio.run(main())


def test_held_requests_wait_for_the_turn_to_end(redis_url: str) -> None:
    got, left = _answered_while_the_loop_is_blocked(redis_url)
    # The first went at once and was answered; the 11 others are held.
    assert left == 11, f"{left} unanswered: held requests were sent while the loop was blocked"
    assert got == [f"v{i}".encode() for i in range(12)]


def test_turned_off_each_request_is_handed_over_at_once(redis_url: str) -> None:
    assert iokernel.configure(loop_batching=False)["loop_batching"] is False
    got, left = _answered_while_the_loop_is_blocked(redis_url)
    assert left == 0, f"{left} requests were not answered while the loop was blocked"
    assert got == [f"v{i}".encode() for i in range(12)]
    with pytest.raises(TypeError, match="loop_batching"):
        iokernel.configure(loop_batching=1)
