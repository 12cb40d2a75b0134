"""The drivers the typed-command tests call through (see __init__.py): ``Driver``
wraps a blocking ``redis.Client`` or an asyncio ``redis.AsyncClient`` so that
``await r.cmd(...)`` works for both, and checks the method returned an
awaitable exactly when it should; ``PipeDriver`` and ``ScriptDriver`` do the
same for pipelines and registered scripts. ``MODES`` are the four client
kinds (blocking/asyncio, decode_responses off/on).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Callable
from typing import Any

MODES = [(False, False), (True, False), (False, True), (True, True)]
MODE_IDS = ["sync", "async", "sync-decode", "async-decode"]


class Driver:
    """One client dressed so that ``await r.cmd(...)`` works for both kinds."""

    def __init__(self, client: Any, is_async: bool, decode: bool) -> None:
        self.client = client
        self.is_async = is_async
        self.decode = decode

    def v(self, value: str | bytes) -> str | bytes:
        if self.decode:
            return value.decode() if isinstance(value, bytes) else value
        return value.encode() if isinstance(value, str) else value

    def vs(self, *values: str | bytes) -> list[str | bytes]:
        return [self.v(x) for x in values]

    async def resolve(self, result: Any, what: str) -> Any:
        kind = "AsyncClient" if self.is_async else "Client"
        if self.is_async:
            assert inspect.isawaitable(result), f"{kind}.{what} returned {result!r}"
            return await result
        assert not inspect.isawaitable(result), f"{kind}.{what} returned an awaitable"
        return result

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.resolve(method(*args, **kwargs), name)

        return call

    def background(self, name: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Start a (blocking) command without waiting for it."""
        method = getattr(self.client, name)
        if self.is_async:
            return asyncio.ensure_future(method(*args, **kwargs))
        return asyncio.ensure_future(asyncio.to_thread(method, *args, **kwargs))

    async def collect(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Drain ``scan_iter`` and friends (a generator, or an async generator)."""
        it = getattr(self.client, name)(*args, **kwargs)
        if self.is_async:
            assert inspect.isasyncgen(it), f"AsyncClient.{name} is not an async generator"
            return [x async for x in it]
        assert inspect.isgenerator(it), f"Client.{name} is not a generator"
        return list(it)

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[Driver]:
        """``client.dedicated()``: a context manager, or an async one."""
        if self.is_async:
            async with self.client.dedicated() as d:
                yield Driver(d, True, self.decode)
        else:
            with self.client.dedicated() as d:
                yield Driver(d, False, self.decode)

    def pipeline(self, **kwargs: Any) -> PipeDriver:
        return PipeDriver(self, self.client.pipeline(**kwargs))

    def register_script(self, source: str) -> ScriptDriver:
        return ScriptDriver(self, self.client.register_script(source))


class ScriptDriver:
    """A registered script; ``await script(keys, args)`` for both kinds."""

    def __init__(self, driver: Driver, script: Any) -> None:
        self.driver = driver
        self.script = script
        self.sha = script.sha

    async def __call__(self, keys: Any = (), args: Any = (), client: Any = None) -> Any:
        return await self.driver.resolve(self.script(keys, args, client=client), "script()")


class PipeDriver:
    """Typed methods queue and chain; ``await p.execute()`` for both kinds."""

    def __init__(self, driver: Driver, pipe: Any) -> None:
        self.driver = driver
        self.pipe = pipe

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.pipe, name)

        def call(*args: Any, **kwargs: Any) -> PipeDriver:
            assert method(*args, **kwargs) is self.pipe, f"pipeline.{name} did not chain"
            return self

        return call

    async def execute(self, **kwargs: Any) -> Any:
        return await self.driver.resolve(self.pipe.execute(**kwargs), "pipeline.execute()")


async def _close(client: Any) -> None:
    closed = client.close()
    if inspect.isawaitable(closed):
        await closed
