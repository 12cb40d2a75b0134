"""asyncio glue: one completer per event loop.

The first iokernel call made in a loop creates a ``Completer`` and registers
its eventfd with ``loop.add_reader``; from then on the kernel wakes the loop
only when replies are waiting, and ``Completer.drain`` resolves all of them
in one callback. Works with any loop that has ``add_reader`` (the default
selector loop and uvloop). The last (loop, completer) pair is cached in one
tuple, so the common case costs one identity check; a forked child forgets
them (`os.register_at_fork`).
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
_last: tuple[Any, Any] = (None, None)


def completer(loop: asyncio.AbstractEventLoop) -> _native.Completer:
    """The completer of ``loop``, created on first use."""
    global _last
    last_loop, last = _last
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
    _last = (loop, c)
    return c


def _forget_after_fork() -> None:
    # A child gets a fresh kernel; completers made in the parent belong to it.
    global _last
    _last = (None, None)
    _by_loop.clear()


os.register_at_fork(after_in_child=_forget_after_fork)
