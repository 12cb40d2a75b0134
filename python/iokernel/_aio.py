"""asyncio glue: one completer per event loop.

The first iokernel call made in a loop creates a ``Completer`` and registers
its eventfd with ``loop.add_reader``; from then on the kernel wakes the loop
only when replies are waiting, and ``Completer.drain`` resolves all of them
in one callback. Works with any loop that has ``add_reader`` (the default
selector loop and uvloop). The last (loop, completer) pair is cached in one
tuple, so the common case costs one identity check; a forked child forgets
them (`os.register_at_fork`). The tuple's third item is ``{"loop": loop}``
when the loop makes its futures as asyncio's own loops do
(``Future(loop=loop)``, not overridden), else None: then native calls make
them directly with that one dict as the keyword arguments, without the
Python frame of ``loop.create_future()`` or a new dict per future. The
fourth says whether it is one of asyncio's own loops, whose ``_thread_id``
tells native calls that it is running in their thread without
``asyncio.get_running_loop()`` (see ``Completer::running``).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from typing import Any

from . import _native

_by_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _native.Completer] = (
    weakref.WeakKeyDictionary()
)
_last: tuple[Any, Any, dict[str, Any] | None, bool] = (None, None, None, False)


def completer(loop: asyncio.AbstractEventLoop) -> _native.Completer:
    """The completer of ``loop``, created on first use."""
    global _last
    last_loop, last, _, _ = _last
    if last_loop is loop:
        return last  # type: ignore[no-any-return]
    c = _by_loop.get(loop)
    if c is None:
        c = _native.Completer()
        try:
            loop.add_reader(c.fileno(), c.drain)
        except NotImplementedError as e:  # e.g. ProactorEventLoop
            raise RuntimeError(
                "iokernel needs an event loop with add_reader() "
                "(the default loop on Linux/macOS, or uvloop)"
            ) from e
        _by_loop[loop] = c
    kwargs = {"loop": loop} if _plain_futures(loop) else None
    _last = (loop, c, kwargs, isinstance(loop, asyncio.BaseEventLoop))
    return c


def _plain_futures(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether ``loop.create_future()`` is asyncio's own, which makes
    ``asyncio.Future(loop=loop)``."""
    return getattr(type(loop), "create_future", None) is asyncio.BaseEventLoop.create_future


def _forget_after_fork() -> None:
    # A child gets a fresh kernel; completers made in the parent belong to it.
    global _last
    _last = (None, None, None, False)
    _by_loop.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
