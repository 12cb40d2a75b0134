"""Pipelines of the Redis clients (``client.pipeline()``): commands queued
and sent in one write, optionally as MULTI/EXEC, with redis-py's WATCH idiom
(see ``_PipelineBase``) and error messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

from . import _aio, _options, _shared
from ._errors import ResponseError, WatchError
from ._redis_commands import Commands
from ._redis_commands_support import shared_connection_refusal
from ._redis_idioms import _BLOCKING, _DEFAULT, WatchState, _checked, annotate

Post = Callable[[Any], Any] | None


class _Done:
    """An awaitable that is already done (``reset()`` with nothing to undo)."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


class _PipelineBase(Commands):
    """Queue of commands sent in one write. Shared by both pipeline kinds.

    redis-py's WATCH idiom works: ``watch(*names)`` leases a connection of
    the pipeline's own and commands then run at once (their results
    returned, not queued) until ``multi()``; ``execute()`` sends
    MULTI/EXEC there and raises ``WatchError`` if a watched key changed;
    ``reset()`` (also at the end of ``with``) gives the connection back."""

    def __init__(self, client: Any, transaction: bool) -> None:
        self._client = client
        self._transaction = _options.flag("transaction", transaction)
        self._cmds: list[tuple[Any, ...]] = []
        self._posts: list[Post] = []
        self._watch = WatchState()

    def _call(self, args: tuple[Any, ...], post: Post = None) -> Any:
        if self._watch.immediate:
            return self._watch.bound._call(args, post)
        if args[0] in _BLOCKING and self._conn_id() is None:
            raise ResponseError(shared_connection_refusal(args) or "blocking command in a pipeline")
        self._cmds.append(args)
        self._posts.append(post)
        return self

    def _conn_id(self) -> int | None:
        return self._watch.conn if self._watch.conn is not None else self._client._conn

    def execute_command(self, *args: Any) -> Any:
        """Queue any command (run it at once between ``watch()`` and ``multi()``)."""
        _checked(args, _DEFAULT)
        if self._watch.immediate:
            return self._watch.bound.execute(*args)
        if self._conn_id() is None:
            why = shared_connection_refusal(args)
            if why is not None:
                raise ResponseError(why)
        return self._call(args)

    def multi(self) -> None:
        """End the immediate mode of ``watch()``: commands queue from here
        on, for MULTI/EXEC at ``execute()``."""
        self._watch.check_multi(len(self._cmds))
        self._transaction = True

    def __len__(self) -> int:
        return len(self._cmds)

    @property
    def watching(self) -> bool:
        """True between ``watch()`` and ``execute()``/``reset()``/``unwatch()``."""
        return self._watch.watching

    def discard(self) -> Any:
        """Queue DISCARD, as redis-py does: inside the pipeline's MULTI it
        drops what was queued, and ``execute()`` then raises ResponseError
        (EXEC without MULTI). Awaitable on an asyncio pipeline."""
        self._cmds.append((b"DISCARD",))
        self._posts.append(None)
        return _Done()

    def __bool__(self) -> bool:
        return True  # an empty pipeline is still a pipeline (redis-py)

    def _clear(self) -> None:
        self._cmds.clear()
        self._posts.clear()

    def _wire(self) -> list[tuple[Any, ...]]:
        if self._transaction:
            return [(b"MULTI",), *self._cmds, (b"EXEC",)]
        return list(self._cmds)

    def _finish(self, raw: list[Any], raise_on_error: bool) -> list[Any]:
        cmds, posts = self._cmds, self._posts
        self._cmds, self._posts = [], []  # the pipeline is empty again, whatever happens
        if self._transaction:
            queued, result = raw[1:-1], raw[-1]
            for i, q in enumerate(queued):
                if isinstance(q, ResponseError):
                    raise annotate(q, i, cmds[i])
            if isinstance(result, ResponseError):
                raise result
            if result is None:
                raise WatchError("Watched variable changed.")
            raw = list(result)
        out: list[Any] = []
        for i, (value, post) in enumerate(zip(raw, posts)):
            if isinstance(value, ResponseError):
                if raise_on_error:
                    raise annotate(value, i, cmds[i])
                out.append(value)
                continue
            out.append(value if post is None else post(value))
        return out


class Pipeline(_PipelineBase):
    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send every queued command in one write; their results in order."""
        _options.flag("raise_on_error", raise_on_error)
        try:
            if not self._cmds and not (self._watch.watching and self._transaction):
                return []
            c = self._watch.bound or self._client
            raw = c._svc.call_many(self._wire(), c._decode, c._timeout, c._conn)
            return self._finish(raw, raise_on_error)
        finally:
            if self._watch.watching:
                self.reset()

    def watch(self, *names: Any) -> bool:
        """WATCH ``names`` on a connection of this pipeline's own; the
        commands that follow run at once until ``multi()``."""
        self._watch.check_watch()
        if self._watch.bound is None:
            self._lease()
        self._watch.watching = True
        return bool(self._watch.bound.execute(b"WATCH", *names))

    def unwatch(self) -> bool:
        if self._watch.bound is None:
            return True
        self._watch.watching = False
        return bool(self._watch.bound.execute(b"UNWATCH"))

    def _lease(self) -> None:
        c = self._client
        if c._conn is not None:
            self._watch.bound, self._watch.conn = c, None
            return
        conn = c._svc.lease(c._lease_timeout)
        self._watch.bound, self._watch.conn = c._bound(conn), conn

    def reset(self) -> None:
        """Empty the queue; after ``watch()``: UNWATCH and give the
        connection back."""
        self._clear()
        w, self._watch = self._watch, WatchState()
        self._transaction = self._transaction or w.multi
        if w.bound is not None:
            try:
                if w.watching:
                    w.bound.execute(b"UNWATCH")
            finally:
                if w.conn is not None:
                    self._client._svc.release(w.conn)

    def close(self) -> None:
        """As ``reset()`` (redis-py's name)."""
        self.reset()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reset()


class AsyncPipeline(_PipelineBase):
    async def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Send every queued command in one write; their results in order."""
        _options.flag("raise_on_error", raise_on_error)
        try:
            if not self._cmds and not (self._watch.watching and self._transaction):
                return []
            c = self._watch.bound or self._client
            loop = asyncio.get_running_loop()
            raw = await c._svc.submit_many(
                _aio.completer(loop), loop.create_future(), self._wire(), None,
                c._decode, c._timeout, c._conn,
            )
            return self._finish(raw, raise_on_error)
        finally:
            if self._watch.watching:
                await self.reset()

    async def watch(self, *names: Any) -> bool:
        """As ``Pipeline.watch``."""
        self._watch.check_watch()
        if self._watch.bound is None:
            c = self._client
            if c._conn is not None:
                self._watch.bound = c
            else:
                conn = await _shared.lease(c._svc, c._lease_timeout)
                self._watch.bound, self._watch.conn = c._bound(conn), conn
        self._watch.watching = True
        return bool(await self._watch.bound.execute(b"WATCH", *names))

    async def unwatch(self) -> bool:
        if self._watch.bound is None:
            return True
        self._watch.watching = False
        return bool(await self._watch.bound.execute(b"UNWATCH"))

    def reset(self) -> Any:
        """Empty the queue; after ``watch()``: UNWATCH and give the
        connection back. Awaitable (as redis-py's); the queue is empty at once."""
        self._clear()
        w, self._watch = self._watch, WatchState()
        return _Done() if w.bound is None else self._unwatch(w)

    async def _unwatch(self, w: WatchState) -> None:
        if w.bound is None:
            return
        try:
            if w.watching:
                await w.bound.execute(b"UNWATCH")
        finally:
            if w.conn is not None:
                self._client._svc.release(w.conn)

    async def aclose(self) -> None:
        await self.reset()

    close = aclose

    async def __aenter__(self) -> AsyncPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.reset()
