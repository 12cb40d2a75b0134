"""The kernel's promises, checked through the Redis client against a real
redis-server: one connection whatever the concurrency, replies never reach
the wrong caller (cancellation storm, threads, several loops), timeouts,
overload, reconnects, dedicated connections, fork, idle CPU and exit.
"""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import iokernel
from iokernel import redis
from tests.servers import RedisServer, dead_port, resp_command

ROOT = Path(__file__).resolve().parents[2]


def test_one_connection_for_hundreds_of_tasks(redis_url: str, redis_server: RedisServer) -> None:
    ar = redis.AsyncClient(redis_url, client_name="many-tasks")

    async def worker(i: int) -> None:
        for j in range(20):
            assert await ar.set(f"k{i}", f"{i}-{j}") is True
            assert await ar.get(f"k{i}") == f"{i}-{j}".encode()

    async def main() -> int:
        await asyncio.gather(*(worker(i) for i in range(500)))
        return ar.stats()["connections"]

    assert asyncio.run(main()) == 1
    clients = resp_command(redis_server.host, redis_server.port, "CLIENT", "LIST")
    assert clients.count(b"name=many-tasks") == 1


def test_many_threads_share_one_blocking_client(redis_url: str) -> None:
    r = redis.Client(redis_url, client_name="threads")
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(200):
                r.set(f"t{i}", j)
                assert r.get(f"t{i}") == str(j).encode()
                assert r.incr(f"count{i}") == j + 1
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors[:3]
    assert r.stats()["connections"] == 1
    assert r.mget([f"count{i}" for i in range(32)]) == [b"200"] * 32


def test_cancellation_storm_never_misroutes(redis_url: str) -> None:
    """Thousands of tasks cancelled at random points; every reply that does
    arrive is the caller's own, and afterwards every key holds what its last
    completed SET wrote."""
    rng = random.Random(1234)
    ar = redis.AsyncClient(redis_url)
    done_sets: dict[int, int] = {}

    async def worker(i: int) -> None:
        for j in range(5):
            tag = f"{i}:{j}"
            assert await ar.echo(tag) == tag.encode()
            await ar.set(f"storm{i}", j)
            done_sets[i] = j
            assert await ar.get(f"storm{i}") == str(j).encode()

    async def main() -> None:
        tasks = [asyncio.create_task(worker(i)) for i in range(3000)]
        for _ in range(40):
            await asyncio.sleep(0)
            for t in rng.sample(tasks, 60):
                t.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        bad = [r for r in results if not isinstance(r, (type(None), asyncio.CancelledError))]
        assert not bad, bad[:3]
        n_cancelled = sum(isinstance(r, asyncio.CancelledError) for r in results)
        assert 0 < n_cancelled < 3000
        # Cancelled callers' replies are still read and dropped by the kernel.
        c = iokernel._aio.completer(asyncio.get_running_loop())
        for _ in range(200):
            if c.pending() == 0:
                break
            await asyncio.sleep(0.01)
        assert c.pending() == 0
        # The connection is still in step: each key holds its last completed SET
        # (or a later one whose caller was cancelled after sending it).
        for i, j in done_sets.items():
            v = int(await ar.get(f"storm{i}"))
            assert j <= v <= 4
        assert await ar.echo("after") == b"after"

    asyncio.run(main())


def test_several_loops_in_threads_share_one_client(redis_url: str) -> None:
    ar = redis.AsyncClient(redis_url)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        async def body() -> None:
            for j in range(300):
                assert await ar.echo(f"{n}/{j}") == f"{n}/{j}".encode()

        try:
            asyncio.run(body())
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert ar.stats()["connections"] == 1


def test_uvloop(redis_url: str) -> None:
    uvloop = pytest.importorskip("uvloop")
    ar = redis.AsyncClient(redis_url)

    async def main() -> list[bytes]:
        return await asyncio.gather(*(ar.echo(str(i)) for i in range(1000)))

    assert uvloop.run(main()) == [str(i).encode() for i in range(1000)]


def test_timeout_is_enforced_and_client_recovers(fresh_redis_server: RedisServer) -> None:
    srv = fresh_redis_server
    r = redis.Client(srv.url(), timeout=0.3)
    assert r.ping() is True
    resp_command(srv.host, srv.port, "CLIENT", "PAUSE", "1500", "ALL")
    t0 = time.monotonic()
    with pytest.raises(iokernel.TimeoutError, match="within the timeout"):
        r.get("x")
    assert time.monotonic() - t0 < 1.5  # the 0.3 s timeout, before the pause ends
    deadline = time.monotonic() + 10
    while True:
        try:
            assert r.ping() is True
            break
        except iokernel.Error:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert r.execute("GET", "x", timeout=5) is None


def test_overload_fails_fast(fresh_redis_server: RedisServer) -> None:
    srv = fresh_redis_server
    ar = redis.AsyncClient(srv.url(), max_in_flight=1, max_queued=1, timeout=5)

    async def main() -> list[object]:
        await ar.ping()
        resp_command(srv.host, srv.port, "CLIENT", "PAUSE", "500", "WRITE")
        return await asyncio.gather(
            *(ar.set(f"o{i}", i) for i in range(10)), return_exceptions=True
        )

    results = asyncio.run(main())
    overloaded = [r for r in results if isinstance(r, iokernel.OverloadedError)]
    assert len(overloaded) == 8, results
    assert "max_queued" in str(overloaded[0])
    assert results.count(True) == 2


def test_dead_server_fails_fast_with_connection_error() -> None:
    r = redis.Client(f"redis://127.0.0.1:{dead_port()}/0", connect_timeout=2)
    t0 = time.monotonic()
    with pytest.raises(iokernel.ConnectionError, match="cannot connect"):
        r.get("x")
    with pytest.raises(iokernel.ConnectionError):
        r.get("x")
    assert time.monotonic() - t0 < 3


def test_killed_server_fails_in_flight_at_once_then_reconnects(
    fresh_redis_server: RedisServer,
) -> None:
    srv = fresh_redis_server
    r = redis.Client(srv.url(), timeout=20)
    assert r.set("a", 1)
    resp_command(srv.host, srv.port, "CLIENT", "PAUSE", "20000", "ALL")
    out: list[BaseException | object] = []
    t = threading.Thread(target=lambda: out.append(_catch(lambda: r.get("a"))))
    t.start()
    _wait_until(lambda: r.stats()["outstanding"] == 1, "the GET is in flight")
    t0 = time.monotonic()
    srv.kill()
    t.join(10)
    assert isinstance(out[0], iokernel.ConnectionError), out
    # told when the connection drops, not at its 20 s timeout
    assert time.monotonic() - t0 < 10, "the caller must hear of the drop when it happens"
    srv.restart()
    deadline = time.monotonic() + 10
    while True:
        try:
            assert r.set("b", 2) is True
            break
        except iokernel.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert r.stats()["connects"] >= 2


def _wait_until(cond: Callable[[], bool], what: str, within: float = 30.0) -> None:
    """Poll for a state the test cannot order itself (another thread's or the
    server's progress); the bound only catches one that never comes."""
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        time.sleep(0.01)


def _blocked_clients(srv: RedisServer) -> int:
    info = resp_command(srv.host, srv.port, "INFO", "clients").decode()
    return int(info.split("blocked_clients:")[1].split()[0])


def _catch(fn: object) -> object:
    try:
        return fn()  # type: ignore[operator]
    except BaseException as e:
        return e


def test_blocking_pop_uses_its_own_connection(redis_url: str, redis_server: RedisServer) -> None:
    r = redis.Client(redis_url)
    got: list[object] = []
    blocked = _blocked_clients(redis_server)
    t = threading.Thread(target=lambda: got.append(r.blpop("queue", 30)))
    t.start()
    _wait_until(lambda: _blocked_clients(redis_server) > blocked, "the BLPOP blocks in the server")
    t0 = time.monotonic()
    for i in range(50):  # the shared connection is not stalled by BLPOP
        assert r.echo(str(i)) == str(i).encode()
    # Stalled behind the BLPOP they would take its 30 s.
    assert time.monotonic() - t0 < 10
    r.rpush("queue", b"job")
    t.join(10)
    assert got == [(b"queue", b"job")]
    assert r.blpop("queue", 0.1) is None


def test_async_blocking_pop(redis_url: str, redis_server: RedisServer) -> None:
    ar = redis.AsyncClient(redis_url)

    async def main() -> object:
        blocked = _blocked_clients(redis_server)
        pop = asyncio.create_task(ar.brpop(["q1", "q2"], 30))
        deadline = time.monotonic() + 30
        while _blocked_clients(redis_server) <= blocked:  # the BRPOP blocks in the server
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        assert await asyncio.wait_for(ar.echo("free"), 10) == b"free"
        await ar.lpush("q2", "x")
        return await pop

    assert asyncio.run(main()) == (b"q2", b"x")


def test_refused_commands_say_what_to_use(redis_url: str) -> None:
    r = redis.Client(redis_url)
    with pytest.raises(redis.ResponseError, match=r"pipeline\(transaction=True\)"):
        r.execute("MULTI")
    with pytest.raises(redis.ResponseError, match="database in the URL"):
        r.execute("select", 2)
    with pytest.raises(redis.ResponseError, match="pub/sub"):
        r.execute("SUBSCRIBE", "ch")
    assert r.ping() is True


def test_transactions_and_watch(redis_url: str) -> None:
    r = redis.Client(redis_url)
    with r.pipeline(transaction=True) as p:
        p.set("x", 1).incr("x").get("x")
        assert p.execute() == [True, 2, b"2"]
    with r.dedicated() as d:
        d.execute("WATCH", "x")
        r.set("x", 99)  # changes the key from another connection
        p = d.pipeline(transaction=True)
        p.set("x", 5)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("x") == b"99"
    assert r.stats()["dedicated_connections"] == 0 or _eventually_zero(r)


def _eventually_zero(r: redis.Client) -> bool:
    for _ in range(100):
        if r.stats()["dedicated_connections"] == 0:
            return True
        time.sleep(0.02)
    return False


def test_pipeline_errors_in_place_or_raised(redis_url: str) -> None:
    r = redis.Client(redis_url)
    r.set("s", "text")
    p = r.pipeline()
    p.incr("s").set("t", 1).get("t")
    res = p.execute(raise_on_error=False)
    assert isinstance(res[0], redis.ResponseError) and res[1:] == [True, b"1"]
    p.incr("s").get("t")
    with pytest.raises(redis.ResponseError, match=r"^Command # 1 \(INCRBY s 1\) of pipeline caused error: ERR"):
        p.execute()
    assert r.get("t") == b"1"


def test_auth_and_database_from_url(redis_auth_server: RedisServer) -> None:
    from tests.conftest import AUTH_PASSWORD, AUTH_USER, AUTH_USER_PASSWORD

    srv = redis_auth_server
    r = redis.Client(srv.url(db=3, password=AUTH_PASSWORD))
    assert r.set("in3", "yes") is True
    u = redis.Client(srv.url(user=AUTH_USER, password=AUTH_USER_PASSWORD))
    assert u.ping() is True
    bad = redis.Client(srv.url(password="not-the-password"), connect_timeout=2)
    with pytest.raises(iokernel.ConnectionError, match="authentication failed") as ei:
        bad.get("x")
    assert "not-the-password" not in str(ei.value)
    assert "not-the-password" not in repr(bad)


def test_unix_socket_url(redis_server: RedisServer) -> None:
    r = redis.Client(f"unix://{redis_server.unix_path}?db=1", decode_responses=True)
    assert r.set("u", "via-unix") is True
    assert r.get("u") == "via-unix"


def test_fork_child_gets_fresh_kernel(redis_url: str) -> None:
    r = redis.Client(redis_url)
    assert r.set("forked", "parent") is True
    pid = os.fork()
    if pid == 0:  # child: report through the exit code, never return to pytest
        code = 0
        try:
            try:
                r.get("forked")
                code = 10
            except iokernel.Error as e:
                if "fork" not in str(e):
                    code = 11
            child = redis.Client(redis_url)
            if child.get("forked") != b"parent":
                code = 12
            child.set("forked", "child")
        except BaseException:
            code = 13
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert r.get("forked") == b"child"


def test_idle_kernel_uses_no_cpu(redis_url: str) -> None:
    # In a process of its own, so that no other test's clients (heartbeats,
    # name refreshes) share the kernel thread; measured from schedstat (the
    # thread's exact run time in ns, which other load on the machine does
    # not inflate, unlike sampled clock ticks).
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from iokernel import redis

        def kernel():
            for task in Path("/proc/self/task").iterdir():
                if (task / "comm").read_text().strip() == "iokernel":
                    run_ns, _wait, slices = (task / "schedstat").read_text().split()
                    return int(run_ns), int(slices)
            raise SystemExit("no thread named iokernel")

        r = redis.Client({redis_url!r}, health_check_interval=30)
        for i in range(2000):
            r.set("idle", i)
        time.sleep(0.2)  # the last reply's bookkeeping is done
        ns0, n0 = kernel()
        time.sleep(1.0)
        ns1, n1 = kernel()
        print(ns1 - ns0, n1 - n0)
    """)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr
    ran_ns, wakeups = map(int, p.stdout.split())
    # Idle: a timer or two at most, no polling loop (a busy or polling
    # kernel would run for many ms and be scheduled hundreds of times).
    print(f"\nidle kernel over 1 s: ran {ran_ns / 1e6:.3f} ms, scheduled {wakeups} times")
    assert ran_ns < 2_000_000 and wakeups <= 10, (ran_ns, wakeups)


def test_interpreter_exit_does_not_hang(redis_url: str) -> None:
    code = textwrap.dedent(f"""
        import asyncio, threading
        from iokernel import redis
        r = redis.Client({redis_url!r}, timeout=None)
        r.set("exit", 1)
        # a caller still blocked when the interpreter exits
        threading.Thread(target=lambda: r.blpop("never", 0), daemon=True).start()
        async def main():
            ar = redis.AsyncClient({redis_url!r})
            await ar.get("exit")
        asyncio.run(main())
        print("bye")
    """)
    t0 = time.monotonic()
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                       cwd=ROOT)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "bye"
    assert time.monotonic() - t0 < 10


def test_async_methods_work_like_coroutines_as_in_redis_py(redis_url: str) -> None:
    import inspect

    ar = redis.AsyncClient(redis_url)

    async def main() -> list[object]:
        coro = ar.echo("x")
        assert asyncio.iscoroutine(coro) and inspect.isawaitable(coro)
        t1 = asyncio.create_task(coro)
        async with asyncio.TaskGroup() as tg:
            t2 = tg.create_task(ar.echo("y"))
        return [await t1, t2.result()]

    if sys.version_info < (3, 11):
        pytest.skip("TaskGroup needs Python 3.11")
    assert asyncio.run(main()) == [b"x", b"y"]
