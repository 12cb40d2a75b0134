"""PostgreSQL results and messages that keep coming: cursors (rows in
batches, bounded memory) and LISTEN/NOTIFY listeners, for the blocking and
the asyncio client (``iokernel.pg`` calls these; nothing here imports it).

Both read a native ``ItemStream``: the kernel pushes each batch of rows or
each notification as it arrives, whatever Python is doing, into a bounded
buffer; when the buffer is full the kernel stops reading that connection
(so a slow consumer holds only ``capacity`` items in memory, and the server
waits). A blocking consumer waits with the GIL released; an asyncio one
awaits a future that its loop's completer resolves when items come.

A cursor runs on a dedicated connection (or the transaction's own), never
on a shared one, because a consumer that stops reading would hold up every
query behind it. A listener is its own one-connection service: it LISTENs
on its channels when it connects and again after every reconnect; a lost
connection is reported once as a ``Gap`` (notifications sent meanwhile may
be lost), then delivery resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, NamedTuple

from . import _aio, _native, _shared
from ._errors import Error

__all__ = ["AsyncListener", "Gap", "Listener", "Notification", "acursor", "cursor"]

# A cursor's batches waiting in memory at most (each `prefetch` rows).
_BATCHES = 2
# Notifications a listener keeps before the kernel stops reading.
_NOTIFY_CAPACITY = 65536
# A listener is ready when this is answered: its connection is LISTENing.
_PID = "SELECT pg_backend_pid()"


class Notification(NamedTuple):
    """A NOTIFY received: the notifying backend's ``pid``, the ``channel``
    and the ``payload`` (``""`` when none was given)."""

    pid: int
    channel: str
    payload: str


class Gap(NamedTuple):
    """The listener's connection was lost (``error`` says how): notifications
    sent before it was back (and LISTENing again) may be missing. Delivery
    resumes on its own; re-read whatever state the notifications track."""

    error: str


async def _wait(stream: Any, loop: asyncio.AbstractEventLoop) -> None:
    fut = loop.create_future()
    stream.arm(fut)
    await fut


def cursor(svc: Any, conn: int | None, lease_timeout: float, sql: str,
           args: tuple[Any, ...], prefetch: int, learn: Any) -> Iterator[Any]:
    """Rows of ``sql`` one by one, fetched ``prefetch`` at a time (blocking).
    ``learn(sql)`` describes a statement the service does not know yet."""
    own = conn is None
    c: int = svc.lease(lease_timeout) if conn is None else conn
    try:
        stream = svc.stream(sql, args, prefetch, _BATCHES, c)
        while stream is None:
            learn(sql)
            stream = svc.stream(sql, args, prefetch, _BATCHES, c)
        try:
            while True:
                try:
                    batch = stream.next(None)
                except StopIteration:
                    return
                if batch is not None:
                    yield from batch
        finally:
            stream.close()
    finally:
        if own:
            svc.release(c)


async def acursor(svc: Any, conn: int | None, lease_timeout: float, sql: str,
                  args: tuple[Any, ...], prefetch: int, learn: Any) -> AsyncIterator[Any]:
    """Asyncio form of ``cursor`` (``await learn(sql)``)."""
    loop = asyncio.get_running_loop()
    own = conn is None
    c: int = await _shared.lease(svc, lease_timeout) if conn is None else conn
    try:
        stream = svc.stream(sql, args, prefetch, _BATCHES, c, _aio.completer(loop))
        while stream is None:
            await learn(sql)
            stream = svc.stream(sql, args, prefetch, _BATCHES, c, _aio.completer(loop))
        try:
            while True:
                try:
                    batch = stream.try_next()
                except StopIteration:
                    return
                if batch is None:
                    await _wait(stream, loop)
                    continue
                for row in batch:
                    yield row
        finally:
            stream.close()
    finally:
        if own:
            svc.release(c)


def _listener_service(dsn: str, channels: Sequence[str], opts: dict[str, Any]) -> Any:
    if not channels:
        raise TypeError("listen() needs at least one channel name")
    for ch in channels:
        if not isinstance(ch, str) or not ch or "\x00" in ch:
            raise ValueError(f"channel names are non-empty str without NUL, not {ch!r}")
    # Its own service (never shared): one connection that LISTENs.
    return _native.PgService(dsn, connections=1, listen=list(channels), **opts)


def _item(stream_call: Any) -> Notification | Gap | None:
    """One stream item as a Notification or Gap; None if none was waiting.
    StopIteration passes through (the listener was closed)."""
    try:
        item = stream_call()
    except Error as e:
        return Gap(str(e))
    return None if item is None else Notification(*item)


class Listener:
    """``for n in db.listen("jobs"):`` — each item a ``Notification``, or a
    ``Gap`` after a reconnect. ``get(timeout)`` takes one (None if none came
    in time). Close it (or use ``with``) to stop listening. ``backend_pid``:
    the listening server process (as of when it became ready)."""

    def __init__(self, dsn: str, channels: Sequence[str], opts: dict[str, Any],
                 ready_timeout: float) -> None:
        self._svc = _listener_service(dsn, channels, opts)
        self._stream = self._svc.subscribe(_NOTIFY_CAPACITY)
        self.channels = tuple(channels)
        # Answered only once the connection is up and LISTENing.
        self.backend_pid: int = self._svc.query(2, _PID, (), 0, ready_timeout, None, True)

    def get(self, timeout: float | None = None) -> Notification | Gap | None:
        if self._svc is _shared.CLOSED:
            raise Error("this listener was closed")
        return _item(lambda: self._stream.next(timeout))

    def __iter__(self) -> Listener:
        return self

    def __next__(self) -> Notification | Gap:
        while True:
            if self._svc is _shared.CLOSED:
                raise StopIteration
            got = _item(lambda: self._stream.next(None))
            if got is not None:
                return got

    def close(self) -> None:
        self._stream.close()
        self._svc = _shared.CLOSED

    def __enter__(self) -> Listener:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncListener:
    """``async for n in db.listen("jobs"):`` — see ``Listener``. The first
    ``__anext__`` (or ``async with``, or ``await listener.ready()``) waits
    until the connection is LISTENing."""

    def __init__(self, dsn: str, channels: Sequence[str], opts: dict[str, Any],
                 ready_timeout: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._svc = _listener_service(dsn, channels, opts)
        self._stream = self._svc.subscribe(_NOTIFY_CAPACITY, _aio.completer(self._loop))
        self.channels = tuple(channels)
        self._ready_timeout = ready_timeout
        self._is_ready = False
        self.backend_pid: int | None = None

    async def ready(self) -> AsyncListener:
        if not self._is_ready and self._svc is not _shared.CLOSED:
            self.backend_pid = await self._svc.submit(
                _aio.completer(self._loop), self._loop.create_future(),
                2, _PID, (), 0, self._ready_timeout, None, True)
            self._is_ready = True
        return self

    async def get(self, timeout: float | None = None) -> Notification | Gap | None:
        """The next item, or None if none came within ``timeout`` seconds."""
        try:
            return await asyncio.wait_for(self.__anext__(), timeout)
        except asyncio.TimeoutError:
            return None

    def __aiter__(self) -> AsyncListener:
        return self

    async def __anext__(self) -> Notification | Gap:
        await self.ready()
        while True:
            if self._svc is _shared.CLOSED:
                raise StopAsyncIteration
            try:
                got = _item(self._stream.try_next)
            except StopIteration:
                raise StopAsyncIteration from None
            if got is not None:
                return got
            await _wait(self._stream, self._loop)

    async def close(self) -> None:
        self._stream.close()
        self._svc = _shared.CLOSED

    async def __aenter__(self) -> AsyncListener:
        return await self.ready()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
