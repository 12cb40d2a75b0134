"""Pipelines of the Redis clients (``client.pipeline()``): commands queued
and sent in one write, optionally as MULTI/EXEC, with redis-py's WATCH idiom
(see ``_PipelineBase``) and error messages.

Binary replies (DUMP) stay bytes under ``decode_responses`` as in redis-py:
a pipeline holding one fetches every reply undecoded and decodes the others
itself (``_decoded``), as the native conversion would have.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

from . import _aio, _native, _options, _shared
from ._errors import ResponseError, WatchError
from ._redis_commands import Commands
from ._redis_commands_support import shared_connection_refusal
from ._redis_idioms import _BLOCKING, _DEFAULT, Lease, WatchState, _checked, annotate

Post = Callable[[Any], Any] | None


class _Done:
    """An awaitable that is already done (``reset()`` with nothing to undo)."""

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


def _decoded(value: Any, errors: str) -> Any:
    """A reply fetched undecoded, as ``decode_responses`` would have given it."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors)
    if isinstance(value, list):
        return [_decoded(v, errors) for v in value]
    if isinstance(value, tuple):  # a map's pair (its keys unhashable)
        return tuple(_decoded(v, errors) for v in value)
    if isinstance(value, dict):
        return {_decoded(k, errors): _decoded(v, errors) for k, v in value.items()}
    if isinstance(value, set):
        return {_decoded(v, errors) for v in value}
    return value


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
        self._undecoded: set[int] = set()  # positions of DUMP & co.
        self._watch = WatchState()

    def _call(self, args: tuple[Any, ...], post: Post = None) -> Any:
        if self._watch.immediate:
            return self._watch.bound._call(args, post)
        if args[0] in _BLOCKING and self._conn_id() is None:
            raise ResponseError(shared_connection_refusal(args) or "blocking command in a pipeline")
        self._cmds.append(args)
        self._posts.append(post)
        return self

    def _call_undecoded(self, args: tuple[Any, ...]) -> Any:
        """Queue a command whose reply is bytes whatever ``decode_responses``
        says (DUMP; redis-py's NEVER_DECODE)."""
        if self._watch.immediate:
            return self._watch.bound._call_undecoded(args)
        self._undecoded.add(len(self._cmds))
        return self._call(args)

    def _mode(self, c: Any) -> int:
        """The text mode to fetch the replies with: the client's, but
        undecoded if a queued command needs bytes (``_finish`` decodes)."""
        return int(c._decode & ~1 if self._undecoded else c._decode)

    def _own_connection(self) -> bool:
        return self._conn_id() is not None

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
        self._undecoded.clear()

    def _wire(self) -> list[tuple[Any, ...]]:
        if self._transaction:
            return [(b"MULTI",), *self._cmds, (b"EXEC",)]
        return list(self._cmds)

    def _finish(self, raw: list[Any], raise_on_error: bool, c: Any) -> list[Any]:
        cmds, posts, undecoded = self._cmds, self._posts, self._undecoded
        # the pipeline is empty again, whatever happens
        self._cmds, self._posts, self._undecoded = [], [], set()
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
        errors = _native.ENCODING_ERRORS[c._decode >> 1]
        redecode = undecoded and c._decode & 1
        out: list[Any] = []
        for i, (value, post) in enumerate(zip(raw, posts)):
            if isinstance(value, ResponseError):
                if raise_on_error:
                    raise annotate(value, i, cmds[i])
                out.append(value)
                continue
            if redecode and i not in undecoded:
                value = _decoded(value, errors)
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
            raw = c._svc.call_many(self._wire(), self._mode(c), c._timeout, c._conn)
            return self._finish(raw, raise_on_error, c)
        finally:  # empty again whatever happened (redis-py resets too)
            if self._watch.watching:
                self.reset()
            else:
                self._clear()

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
            self._watch.bound = c
            return
        self._watch.lease = Lease(c._svc, c._svc.lease(c._lease_timeout))
        self._watch.bound = c._bound(self._watch.lease.conn)

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
                w.release()

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
                self._mode(c), c._timeout, c._conn,
            )
            return self._finish(raw, raise_on_error, c)
        finally:  # empty again whatever happened (redis-py resets too)
            if self._watch.watching:
                await self.reset()
            else:
                self._clear()

    async def watch(self, *names: Any) -> bool:
        """As ``Pipeline.watch``."""
        self._watch.check_watch()
        if self._watch.bound is None:
            c = self._client
            if c._conn is not None:
                self._watch.bound = c
            else:
                lease = Lease(c._svc, await _shared.lease(c._svc, c._lease_timeout))
                self._watch.bound, self._watch.lease = c._bound(lease.conn), lease
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
            w.release()

    async def aclose(self) -> None:
        await self.reset()

    close = aclose

    async def __aenter__(self) -> AsyncPipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.reset()
