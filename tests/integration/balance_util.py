"""Helpers of the balancing tests: three real redis-servers on 127.0.0.2,
127.0.0.3 and 127.0.0.4 with one port (replicas "of one name"), a client
given all three as its endpoints, and a load of asyncio tasks in a thread
of its own that records every failure."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import iokernel
from iokernel import redis
from tests.servers import RedisServer, free_port_on_all

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


@contextlib.contextmanager
def redis_trio() -> Iterator[list[RedisServer]]:
    port = free_port_on_all(HOSTS)
    servers = [RedisServer(host=h, port=port) for h in HOSTS]
    try:
        for s in servers:
            s.start()
        yield servers
    finally:
        for s in servers:
            s.stop(cleanup=True)


def addr(s: RedisServer) -> str:
    return f"{s.host}:{s.port}"


def client(url: str, addrs: list[str], cls: Any = redis.AsyncClient, **kw: Any) -> Any:
    """A client of its own service (a unique client name), whose endpoints
    are `addrs`."""
    c = cls(url, client_name=f"bal-{uuid.uuid4().hex[:8]}", **kw)
    c._svc._set_addresses(addrs)
    return c


def wait_for(what: str, cond: Callable[[], bool], timeout: float, step: float = 0.02) -> float:
    """Seconds until `cond()` held; fails naming `what` after `timeout`."""
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(step)
    return time.monotonic() - t0


def by_address(c: Any) -> dict[str, dict[str, Any]]:
    return {e["address"]: e for e in c.endpoints()}


def requests(c: Any) -> dict[str, int]:
    return {a: e["requests"] for a, e in by_address(c).items()}


@dataclass
class Load:
    """`tasks` asyncio tasks each running SET/GET in a loop on `c`, in a
    thread with its own event loop, until `stop()`; each sleeps `pause`
    seconds after each pair (0: full speed)."""

    c: Any
    tasks: int = 50
    pause: float = 0.0
    done: int = 0
    failures: list[tuple[int, str, str | None, str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Load:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            assert not self._thread.is_alive(), "the load did not stop"

    async def _main(self) -> None:
        await asyncio.gather(*(self._task(i) for i in range(self.tasks)))

    async def _task(self, i: int) -> None:
        key = f"k{i}"
        while not self._stop.is_set():
            try:
                await self.c.set(key, b"v")
                await self.c.get(key)
                self.done += 2
                if self.pause:
                    await asyncio.sleep(self.pause)
            except iokernel.Error as e:
                self.failures.append((i, type(e).__name__, e.stage, str(e), time.monotonic()))
                await asyncio.sleep(0.001)
