"""What iokernel is for, in under a minute.

1. Thousands of concurrent asyncio callers share ONE connection: every reply
   reaches its own caller, and the server sees a single client.
2. A short side-by-side run against redis-py (asyncio with a pool, and
   blocking threads with a pool), same server, same run.
3. A caller that gives up (timeout) never disturbs the others.
4. PostgreSQL: thousands of callers pipelined over two connections, next to
   asyncpg with a pool of 10, same server, same run.

`make demo` starts a throw-away redis-server and PostgreSQL and sets
IOKERNEL_DEMO_REDIS_URL and IOKERNEL_DEMO_PG_URL.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis as redispy
import redis.asyncio as redispy_async

import iokernel
from iokernel import redis

URL = os.environ.get("IOKERNEL_DEMO_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("IOKERNEL_DEMO_PG_URL")


def server_clients(name: str) -> int:
    """How many connections the server has from clients named `name`."""
    raw = redispy.Redis.from_url(URL)
    try:
        return sum(1 for c in raw.client_list() if c.get("name") == name)
    finally:
        raw.close()


async def many_callers(n: int) -> None:
    ar = redis.AsyncClient(URL, client_name="iokernel-demo")

    async def caller(i: int) -> None:
        await ar.set(f"demo:{i}", i)
        got = await ar.get(f"demo:{i}")
        assert got == str(i).encode(), (i, got)

    t0 = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(n)))
    dt = time.perf_counter() - t0
    print(f"  {n:,} concurrent asyncio callers, {2 * n:,} commands in {dt:.2f}s: "
          f"every reply reached its own caller")
    print(f"  connections opened by iokernel: {ar.stats()['connections']}; "
          f"seen by the server: {server_clients('iokernel-demo')}")


async def rate_async(op: Callable[[], Awaitable[Any]], tasks: int, total: int) -> float:
    """ops/s of `tasks` coroutines each awaiting `op()` in a loop."""
    await op()
    per = total // tasks

    async def worker() -> None:
        for _ in range(per):
            await op()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return per * tasks / (time.perf_counter() - t0)


def rate_threads(op: Callable[[], Any], threads: int, total: int) -> float:
    """ops/s of `threads` threads each calling `op()` in a loop."""
    op()
    per = total // threads
    start = threading.Barrier(threads + 1)

    def worker() -> None:
        start.wait()
        for _ in range(per):
            op()

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return per * threads / (time.perf_counter() - t0)


async def ours_async(tasks: int) -> float:
    c = redis.AsyncClient(URL)
    return await rate_async(lambda: c.get("demo:1"), tasks, 20_000)


async def redispy_async_pool(tasks: int, pool: int) -> float:
    c = redispy_async.Redis(connection_pool=redispy_async.BlockingConnectionPool.from_url(
        URL, max_connections=pool))
    try:
        return await rate_async(lambda: c.get("demo:1"), tasks, 6_000)
    finally:
        await c.aclose()


def side_by_side() -> None:
    rows: list[tuple[str, float, float, str]] = []
    for tasks in (50, 500):
        pool = min(tasks, 50)
        ours = asyncio.run(ours_async(tasks))
        theirs = asyncio.run(redispy_async_pool(tasks, pool))
        rows.append((f"GET, {tasks} asyncio tasks", ours, theirs, f"1 vs {pool} (pool)"))
    mine = redis.Client(URL)
    ours = rate_threads(lambda: mine.get("demo:1"), 20, 20_000)
    theirs_client = redispy.Redis(
        connection_pool=redispy.BlockingConnectionPool.from_url(URL, max_connections=20))
    theirs = rate_threads(lambda: theirs_client.get("demo:1"), 20, 10_000)
    rows.append(("GET, 20 threads, blocking", ours, theirs, "1 vs 20 (pool)"))
    print(f"  {'scenario':<28} {'iokernel':>12} {'redis-py':>12} {'ratio':>7}  connections")
    for name, a, b, conns in rows:
        print(f"  {name:<28} {a:>10,.0f}/s {b:>10,.0f}/s {a / b:>6.1f}x  {conns}")
    print("  (a quick run; docs/benchmarks.md has the full, repeated benchmark)")


async def impatient_caller() -> None:
    ar = redis.AsyncClient(URL)
    others = [asyncio.create_task(ar.echo(f"caller-{i}")) for i in range(100)]
    impatient = asyncio.create_task(ar.get("demo:1"))
    await asyncio.sleep(0)
    impatient.cancel()  # gives up after its request was sent
    got = await asyncio.gather(*others)
    assert got == [f"caller-{i}".encode() for i in range(100)]
    print("  one caller gave up mid-flight; the 100 others each got their own reply")


async def postgres_demo(dsn: str) -> None:
    import asyncpg  # the reference client, for the side-by-side

    from iokernel import pg

    db = pg.AsyncClient(dsn + ("&" if "?" in dsn else "?") + "application_name=iokernel-demo")
    got = await asyncio.gather(*(db.fetchval("SELECT $1::int * 2", i) for i in range(2_000)))
    assert got == [2 * i for i in range(2_000)]
    n = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'iokernel-demo'")
    print(f"  2,000 concurrent queries, each its own answer; server connections used: {n}")

    async def ours() -> float:
        return await rate_async(lambda: db.fetchval("SELECT $1::int + 1", 41), 50, 10_000)

    async def theirs() -> float:
        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        try:
            return await rate_async(lambda: pool.fetchval("SELECT $1::int + 1", 41), 50, 4_000)
        finally:
            await pool.close()

    a, b = await ours(), await theirs()
    print(f"  {'SELECT $1::int + 1, 50 tasks':<28} {a:>10,.0f}/s {b:>10,.0f}/s {a / b:>6.1f}x"
          "  2 vs 10 (asyncpg pool)")

    # executemany: rows stream to the server while they are encoded.
    await db.execute("CREATE UNLOGGED TABLE IF NOT EXISTS demo_many (a int, b text, c float8)")
    rows = [(i, f"row {i}", i * 0.5) for i in range(10_000)]
    conn = await asyncpg.connect(dsn)
    times: dict[str, list[float]] = {"ours": [], "theirs": []}
    try:
        for _ in range(3):  # interleaved; the median of each
            for who, run in (("ours", db.executemany), ("theirs", conn.executemany)):
                await db.execute("TRUNCATE demo_many")
                t0 = time.perf_counter()
                await run("INSERT INTO demo_many VALUES ($1, $2, $3)", rows)
                times[who].append(time.perf_counter() - t0)
        assert await db.fetchval("SELECT count(*) FROM demo_many") == len(rows)
    finally:
        await conn.close()
        await db.execute("DROP TABLE demo_many")
    a, b = (len(rows) / sorted(times[w])[1] for w in ("ours", "theirs"))
    print(f"  {'executemany, 10,000 rows':<28} {a:>10,.0f}/s {b:>10,.0f}/s {a / b:>6.1f}x"
          "  rows/s, 1 caller each")


def main() -> None:
    print(f"iokernel {iokernel.__version__} — Redis at {redis.Client(URL).url}\n")
    print("1. Many callers, one connection")
    asyncio.run(many_callers(5_000))
    print("\n2. Side by side with redis-py (same server, same run; ops/s)")
    side_by_side()
    print("\n3. Cancellation never shifts replies")
    asyncio.run(impatient_caller())
    if PG_URL:
        print("\n4. PostgreSQL (iokernel vs asyncpg, ops/s)")
        asyncio.run(postgres_demo(PG_URL))
    print("\nMore: README.md (usage), docs/benchmarks.md (full benchmark), make test.")


if __name__ == "__main__":
    main()
