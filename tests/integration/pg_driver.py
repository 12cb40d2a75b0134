"""The PostgreSQL test driver: one test body, written as a coroutine that
awaits every call, runs against the blocking ``pg.Client`` and the asyncio
``pg.AsyncClient`` alike (see ``Driver``); the ``db`` and ``table`` fixtures
are in ``conftest.py``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import iokernel
from iokernel import pg

MODES = ["sync", "async"]


def drive(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never suspends (a body over the blocking driver)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("a blocking-driver body suspended")


class Driver:
    """One client dressed so that ``await db.fetch(...)`` works for both kinds."""

    def __init__(self, client: Any, is_async: bool, app: str = "") -> None:
        self.client = client
        self.is_async = is_async
        self.app = app

    @property
    def kind(self) -> str:
        return "AsyncClient" if self.is_async else "Client"

    async def resolve(self, result: Any, what: str) -> Any:
        if self.is_async:
            assert inspect.isawaitable(result), f"{self.kind}.{what} returned {result!r}"
            return await result
        assert not inspect.isawaitable(result), f"{self.kind}.{what} returned an awaitable"
        return result

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.resolve(method(*args, **kwargs), name)

        return call

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Driver]:
        """``client.transaction()`` (or ``tx.transaction()``: a savepoint)."""
        if self.is_async:
            async with self.client.transaction() as tx:
                yield Driver(tx if tx is not None else self.client, True, self.app)
        else:
            with self.client.transaction() as tx:
                yield Driver(tx if tx is not None else self.client, False, self.app)

    async def concurrently(
        self, jobs: list[Callable[[], Awaitable[Any]]]
    ) -> list[Any]:
        """Run the jobs at once (tasks, or one thread each); results or exceptions, in order."""
        if self.is_async:
            return list(await asyncio.gather(*(j() for j in jobs), return_exceptions=True))

        def one(job: Callable[[], Awaitable[Any]]) -> Any:
            try:
                return drive(job())  # type: ignore[arg-type]
            except BaseException as e:
                return e

        with ThreadPoolExecutor(max_workers=len(jobs)) as ex:
            return list(ex.map(one, jobs))

    async def close(self) -> None:
        await aclose(self.client)


async def aclose(client: Any) -> None:
    closed = client.close()
    if inspect.isawaitable(closed):
        await closed


def new_app(tag: str = "t") -> str:
    return f"iok-{tag}-{uuid.uuid4().hex[:10]}"


def make(dsn: str, is_async: bool, **kwargs: Any) -> Any:
    cls = pg.AsyncClient if is_async else pg.Client
    return cls(dsn, **kwargs)


async def eventually(fn: Callable[[], Awaitable[Any]], *, within: float = 10.0,
                     retry_on: tuple[type[BaseException], ...] = (iokernel.Error,)) -> Any:
    """fn()'s result once it stops raising retry_on; fails after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        try:
            return await fn()
        except retry_on:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


async def until(cond: Callable[[], bool], what: str, *, within: float = 30.0) -> None:
    """Wait for a state the test cannot order itself (another task's, thread's
    or the server's progress) instead of sleeping and hoping. `cond` may block
    (it runs in a thread); the bound only catches a state that never comes."""
    deadline = time.monotonic() + within
    while not await asyncio.to_thread(cond):
        assert time.monotonic() < deadline, f"gave up waiting until {what}"
        await asyncio.sleep(0.01)


# ------------------------------------------------------------ results, Record
