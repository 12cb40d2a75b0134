"""Learning a statement's types, once, for every caller that needs them.

A statement the service has not described yet (``UNKNOWN_STATEMENT`` from
the native query methods) is described: one round trip, whose Parse also
prepares the statement on the connection it went to, so the executions
that follow there bind to it without parsing it again. Database types it
uses that the service does not know yet (enums, composites ...) are looked
up first (``_pg_types.INTROSPECT``), reusing the one description.

Concurrent first uses share that describe: callers of the same SQL on the
same connection (shared, or one dedicated connection) that arrive while it
is under way wait for it instead of sending their own, in threads
(``learn``) and in an event loop (``astart``). If it fails, the first
caller gets its error and each of the others describes on its own, so
every caller gets the server's answer to its own request. ``iokernel.pg``
calls these with the client (duck-typed: ``_svc``, ``_conn``, ``fetch``).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable
from typing import Any

from . import _aio
from . import _pg_types as _pgt
from ._errors import InterfaceError

__all__ = ["aparams", "astart", "learn", "params"]

# (service, dedicated connection or None, SQL) -> the describe under way.
_Key = tuple[int, int | None, str]
_threads: dict[_Key, threading.Event] = {}
_tasks: dict[_Key, asyncio.Task[None]] = {}
_lock = threading.Lock()


def _key(client: Any, sql: str) -> _Key:
    return (id(client._svc), client._conn, sql)


def _missing(client: Any, sql: str, described: tuple[list[int], list[int]]) -> list[int]:
    """Cache the described statement; the type OIDs still to look up."""
    return _pgt.learned(client._svc, sql, described)


def _failed(missing: list[int]) -> InterfaceError:
    return InterfaceError(f"could not learn the types of the statement: {missing} "
                          f"(still unknown after {_pgt.LEARN_ROUNDS} rounds of introspection)")


# ------------------------------------------------------------------ blocking
def params(client: Any, sql: str, t: float | None) -> list[int]:
    """``sql``'s parameter types, described first if need be."""
    types: list[int] | None = client._svc.statement_params(sql)
    while types is None:
        learn(client, sql, t)
        types = client._svc.statement_params(sql)
    return types


def learn(client: Any, sql: str, t: float | None) -> None:
    """Describe ``sql`` (blocking), unless another thread is doing it: then
    wait for that one and return (the caller asks again)."""
    key = _key(client, sql)
    with _lock:
        flight = _threads.get(key)
        if flight is None:
            if client._svc.statement_params(sql) is not None:
                return  # learned meanwhile
            flight = _threads[key] = threading.Event()
            leader = True
        else:
            leader = False
    if not leader:
        flight.wait(t)
        return
    try:
        described = client._svc.describe_statement(sql, t, client._conn)
        missing = _missing(client, sql, described)
        for _ in range(_pgt.LEARN_ROUNDS):
            if not missing:
                return
            rows = client.fetch(_pgt.INTROSPECT, missing, timeout=t)
            client._svc.learn_types(_pgt.kinds(rows, missing))
            missing = _missing(client, sql, described)
        raise _failed(missing)
    finally:
        with _lock:
            _threads.pop(key, None)
        flight.set()


# ------------------------------------------------------------------- asyncio
async def aparams(client: Any, sql: str, t: float | None) -> list[int]:
    """As ``params``, in the running loop."""
    types: list[int] | None = client._svc.statement_params(sql)
    while types is None:
        await astart(client, sql, t)
        types = client._svc.statement_params(sql)
    return types


def astart(client: Any, sql: str, t: float | None) -> Awaitable[None]:
    """Learn ``sql``'s types in the running loop: the describe is submitted
    before this returns (so it is under way in call order, as a known
    statement's query is), or the one under way is joined."""
    loop = asyncio.get_running_loop()
    key = _key(client, sql)
    task = _tasks.get(key)
    if task is not None and not task.done() and task.get_loop() is loop:
        return _follow(task)
    if client._svc.statement_params(sql) is not None:
        return _nothing()
    described = client._svc.submit_describe_statement(
        _aio.completer(loop), loop.create_future(), sql, t, client._conn
    )
    task = loop.create_task(_alearn(client, sql, t, described))
    _tasks[key] = task
    task.add_done_callback(lambda done: _landed(key, done))
    # Shielded: a cancelled first caller does not cancel the others' wait.
    return asyncio.shield(task)


async def _alearn(client: Any, sql: str, t: float | None, described: Any) -> None:
    info = await described
    missing = _missing(client, sql, info)
    for _ in range(_pgt.LEARN_ROUNDS):
        if not missing:
            return
        rows = await client.fetch(_pgt.INTROSPECT, missing, timeout=t)
        client._svc.learn_types(_pgt.kinds(rows, missing))
        missing = _missing(client, sql, info)
    raise _failed(missing)


async def _follow(task: asyncio.Task[None]) -> None:
    # Its error belongs to the caller that started it; this one asks again
    # (and describes on its own if the statement is still unknown).
    with contextlib.suppress(Exception):
        await asyncio.shield(task)


async def _nothing() -> None:
    return None


def _landed(key: _Key, task: asyncio.Task[None]) -> None:
    if _tasks.get(key) is task:
        del _tasks[key]
    if not task.cancelled():
        task.exception()  # retrieved: its callers may all have gone
