"""One benchmark measurement: a client, a scenario, a concurrency, a number of ops.

Used by bench/run.py (which interleaves many of these) and
bench/profile_asyncio.py. Every measurement opens its own client (with a
unique CLIENT SETNAME tag, so its connections can be counted on the server),
warms it up at the full concurrency (pools are filled, connections are made),
then times exactly ``ops`` commands, counts the connections the client holds
at that moment from a separate raw socket, and closes the client. Setup and
teardown are never timed.

Clients:

* ``iokernel``: ``iokernel.redis.Client`` / ``AsyncClient``;
* ``redis-py``: redis-py with hiredis; blocking: ``redis.Redis`` on a
  ``BlockingConnectionPool(max_connections=min(concurrency, 50))``; asyncio:
  ``redis.asyncio.Redis`` on an asyncio ``BlockingConnectionPool`` of the same
  size (the usual production setting: a pool as large as the concurrency,
  capped at 50 connections);
* ``glide``: valkey-glide ``GlideClient`` (asyncio only);
* ``floor-*``: bench/floor.py, no I/O (asyncio only).
"""

from __future__ import annotations

import asyncio
import gc
import socket
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from floor import MODES as FLOOR_MODES
from floor import FloorKernel
from measuring import Clock, Measurement, timed_threads

KEY = "bench:key"
VALUE = b"v" * 16
POOL_CAP = 50  # redis-py pools: min(concurrency, POOL_CAP) connections
PIPELINE = 100  # commands per explicit pipeline

ASYNC_CLIENTS = ("iokernel", "redis-py", "glide", *(f"floor-{m}" for m in FLOOR_MODES))
SYNC_CLIENTS = ("iokernel", "redis-py")


# ------------------------------------------------------------------ raw RESP
def raw_command(url: str, *args: str, timeout: float = 5.0) -> bytes | int | str | None:
    """One command on a fresh socket (never through a client under test)."""
    u = urlparse(url)
    payload = b"*%d\r\n" % len(args) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in args
    )
    with socket.create_connection((u.hostname or "127.0.0.1", u.port or 6379), timeout) as s:
        if u.password:
            auth = [u.username, u.password] if u.username else [u.password]
            s.sendall(
                b"*%d\r\n$4\r\nAUTH\r\n" % (len(auth) + 1)
                + b"".join(b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in auth)
            )
            _read_reply(s, bytearray())
        s.sendall(payload)
        return _read_reply(s, bytearray())


def _read_reply(s: socket.socket, buf: bytearray) -> bytes | int | str | None:
    while b"\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        buf += chunk
    line, _, rest = bytes(buf).partition(b"\r\n")
    kind, body = line[:1], line[1:]
    if kind == b"+":
        return body.decode()
    if kind == b"-":
        raise RuntimeError(body.decode())
    if kind == b":":
        return int(body)
    if kind == b"$":
        n = int(body)
        if n < 0:
            return None
        data = bytearray(rest)
        while len(data) < n + 2:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            data += chunk
        return bytes(data[:n])
    raise RuntimeError(f"unexpected reply {line!r}")


def connections_named(url: str, tag: str) -> int:
    """How many connections the server has whose CLIENT SETNAME is ``tag``."""
    text = raw_command(url, "CLIENT", "LIST")
    assert isinstance(text, bytes)
    needle = f" name={tag} "
    return sum(1 for line in text.decode().splitlines() if needle in line + " ")


def server_cpu(url: str) -> float:
    """used_cpu_user + used_cpu_sys of the server's main thread and others (INFO cpu)."""
    text = raw_command(url, "INFO", "cpu")
    assert isinstance(text, bytes)
    total = 0.0
    for line in text.decode().splitlines():
        k, _, v = line.partition(":")
        if k in ("used_cpu_user", "used_cpu_sys"):
            total += float(v)
    return total


def connected_clients(url: str) -> int:
    """All client connections of the server, not counting the one asking."""
    text = raw_command(url, "CLIENT", "LIST")
    assert isinstance(text, bytes)
    return max(0, len([ln for ln in text.decode().splitlines() if ln.strip()]) - 1)


# ------------------------------------------------------------------ event loops
def loop_factory(kind: str) -> Callable[[], asyncio.AbstractEventLoop]:
    if kind == "asyncio":
        return asyncio.SelectorEventLoop  # the default loop on Linux
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop  # type: ignore[no-any-return]
    raise ValueError(f"unknown loop {kind!r}")


def run_in_loop(kind: str, coro: Coroutine[Any, Any, Any]) -> Any:
    loop = loop_factory(kind)()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


# ------------------------------------------------------------------ asyncio clients
@dataclass
class AsyncHandle:
    get: Callable[[str], Awaitable[Any]]
    set: Callable[[str, bytes], Awaitable[Any]]
    pipe: Callable[[int], Awaitable[Any]]
    close: Callable[[], Awaitable[Any]]
    stats: Callable[[], int | None] = lambda: None
    tag: str | None = None


async def open_async(client: str, url: str, tag: str, conc: int) -> AsyncHandle:
    if client in ("iokernel", "iokernel-nobatch"):
        import iokernel
        from iokernel import redis as iok

        # "iokernel-nobatch": the A/B client of --ab-loop-batching
        iokernel.configure(loop_batching=client == "iokernel")
        c = iok.AsyncClient(url, client_name=tag)

        async def pipe(n: int) -> Any:
            p = c.pipeline(transaction=False)
            for _ in range(n):
                p.get(KEY)
            return await p.execute()

        def stats() -> int:
            s = c.stats()
            return int(s["connections"]) + int(s.get("dedicated_connections", 0))

        return AsyncHandle(c.get, c.set, pipe, c.close, stats, tag)

    if client == "redis-py":
        import redis.asyncio as ra

        pool = ra.BlockingConnectionPool.from_url(
            url, max_connections=min(conc, POOL_CAP), client_name=tag
        )
        r = ra.Redis(connection_pool=pool)

        async def pipe(n: int) -> Any:
            p = r.pipeline(transaction=False)
            for _ in range(n):
                p.get(KEY)
            return await p.execute()

        async def close() -> None:
            await r.aclose()
            await pool.disconnect()

        return AsyncHandle(r.get, r.set, pipe, close, tag=tag)

    if client == "glide":
        from glide import Batch, GlideClient, GlideClientConfiguration, NodeAddress

        u = urlparse(url)
        cfg = GlideClientConfiguration(
            [NodeAddress(u.hostname or "127.0.0.1", u.port or 6379)],
            client_name=tag,
            database_id=int((u.path or "/0").lstrip("/") or 0),
        )
        g = await GlideClient.create(cfg)

        async def pipe(n: int) -> Any:
            b = Batch(is_atomic=False)
            for _ in range(n):
                b.get(KEY)
            return await g.exec(b, raise_on_error=True)

        return AsyncHandle(g.get, g.set, pipe, g.close, tag=tag)

    if client.startswith("floor-"):
        fk = FloorKernel(asyncio.get_running_loop(), client.removeprefix("floor-"))

        async def no_pipe(n: int) -> Any:
            raise NotImplementedError

        async def close_floor() -> None:
            fk.close()

        def fk_set(_k: str, _v: bytes) -> Awaitable[Any]:
            return fk.get(_k)

        return AsyncHandle(fk.get, fk_set, no_pipe, close_floor, lambda: 0, None)

    raise ValueError(f"unknown asyncio client {client!r}")


async def _get_worker(get: Callable[[str], Awaitable[Any]], n: int) -> None:
    for _ in range(n):
        await get(KEY)


async def _set_worker(set_: Callable[[str, bytes], Awaitable[Any]], n: int) -> None:
    for _ in range(n):
        await set_(KEY, VALUE)


async def _pipe_worker(pipe: Callable[[int], Awaitable[Any]], n: int) -> None:
    for _ in range(n):
        await pipe(PIPELINE)


async def _together(coros: list[Coroutine[Any, Any, None]]) -> None:
    """Run the workers at once. If one fails (e.g. glide's TimeoutError),
    the others are cancelled and waited for before the error goes on, so
    nothing still runs on the client when it is closed."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def split(ops: int, conc: int) -> list[int]:
    base, extra = divmod(ops, conc)
    return [base + (1 if i < extra else 0) for i in range(conc)]


async def _async_case(
    client: str, op: str, conc: int, ops: int, url: str, tag: str
) -> Measurement:
    h = await open_async(client, url, tag, conc)
    try:
        if op == "pipeline":
            async def run(counts: list[int]) -> None:
                await _together([_pipe_worker(h.pipe, n) for n in counts])
            counts = split(ops // PIPELINE, conc)
            ops = sum(counts) * PIPELINE
            warm = [2] * conc
        else:
            worker: Any = _get_worker if op == "get" else _set_worker
            fn: Any = h.get if op == "get" else h.set

            async def run(counts: list[int]) -> None:
                await _together([worker(fn, n) for n in counts])
            counts = split(ops, conc)
            warm = [3] * conc
        await run(warm)
        gc.collect()
        clock = Clock(None if client.startswith("floor-") else lambda: server_cpu(url))
        clock.start()
        await run(counts)
        clock.stop()
        m = clock.measurement(ops)
        m.conns_stats = h.stats()
        if h.tag is not None:
            m.conns_server = connections_named(url, h.tag)
        elif client.startswith("floor-"):
            m.conns_server = 0
        return m
    finally:
        await h.close()


def measure_async(
    client: str, loop: str, op: str, conc: int, ops: int, url: str, tag: str
) -> Measurement:
    """``ops`` commands (``op``: get, set or pipeline) from ``conc`` asyncio tasks."""
    return run_in_loop(loop, _async_case(client, op, conc, ops, url, tag))  # type: ignore[no-any-return]


# ------------------------------------------------------------------ blocking clients
@dataclass
class SyncHandle:
    get: Callable[[str], Any]
    set: Callable[[str, bytes], Any]
    pipe: Callable[[int], Any]
    close: Callable[[], Any]
    stats: Callable[[], int | None] = lambda: None


def open_sync(client: str, url: str, tag: str, conc: int) -> SyncHandle:
    if client == "iokernel":
        from iokernel import redis as iok

        c = iok.Client(url, client_name=tag)

        def pipe(n: int) -> Any:
            p = c.pipeline(transaction=False)
            for _ in range(n):
                p.get(KEY)
            return p.execute()

        def stats() -> int:
            s = c.stats()
            return int(s["connections"]) + int(s.get("dedicated_connections", 0))

        return SyncHandle(c.get, c.set, pipe, c.close, stats)

    if client == "redis-py":
        import redis

        pool = redis.BlockingConnectionPool.from_url(
            url, max_connections=min(conc, POOL_CAP), client_name=tag
        )
        r = redis.Redis(connection_pool=pool)

        def pipe(n: int) -> Any:
            p = r.pipeline(transaction=False)
            for _ in range(n):
                p.get(KEY)
            return p.execute()

        def close() -> None:
            r.close()
            pool.disconnect()

        return SyncHandle(r.get, r.set, pipe, close)

    if client in ("floor-blocking", "floor-nospin"):
        # No I/O: each call is one round trip through a helper thread that
        # answers at once, waited for as a blocking iokernel call waits
        # (floor-nospin: sleeping at once, never spinning first).
        from iokernel import _native

        call = _native._floor_call  # type: ignore[attr-defined]
        spin = client == "floor-blocking"

        def floor_op(*_args: Any) -> None:
            call(spin)

        def no_pipe(n: int) -> Any:
            raise ValueError("the blocking floor has no pipeline")

        return SyncHandle(floor_op, floor_op, no_pipe, lambda: None)

    raise ValueError(f"unknown blocking client {client!r}")


def measure_threads(client: str, op: str, conc: int, ops: int, url: str, tag: str) -> Measurement:
    """``ops`` commands from ``conc`` threads sharing one blocking client
    (``conc == 1``: the calling thread itself)."""
    h = open_sync(client, url, tag, conc)
    try:
        if op == "pipeline":
            def body(n: int) -> None:
                pipe = h.pipe
                for _ in range(n):
                    pipe(PIPELINE)
            counts = split(ops // PIPELINE, conc)
            ops = sum(counts) * PIPELINE
            warm = 2
        elif op == "get":
            def body(n: int) -> None:
                get = h.get
                for _ in range(n):
                    get(KEY)
            counts = split(ops, conc)
            warm = 3
        else:
            def body(n: int) -> None:
                set_ = h.set
                for _ in range(n):
                    set_(KEY, VALUE)
            counts = split(ops, conc)
            warm = 3

        clock = Clock(lambda: server_cpu(url))
        timed_threads(body, counts, warm, clock)
        m = clock.measurement(ops)
        m.conns_stats = h.stats()
        m.conns_server = connections_named(url, tag)
        return m
    finally:
        h.close()
