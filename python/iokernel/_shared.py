"""Pieces every protocol's client uses: the per-URL registry of native
services (so clients with the same URL and options share connections), the
stand-in for a closed client, and the coroutine wrapper of async methods."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from . import _native, admin
from ._errors import ConnectionError

_services: weakref.WeakValueDictionary[tuple[Any, ...], Any] = weakref.WeakValueDictionary()


def service(factory: Callable[..., Any], url: str, **opts: Any) -> Any:
    """The native service for `url` and `opts`, shared by every client that
    names the same; made by `factory` on first use (which also starts the
    admin endpoint, unless IOKERNEL_ADMIN=off)."""
    key = (factory, url, _native.generation(), *sorted(opts.items()))
    svc = _services.get(key)
    if svc is None:
        admin._autostart()
        svc = factory(url, **opts)
        _services[key] = svc
    return svc


class _Closed:
    """Stands in for the native service of a closed client."""

    name = "(closed client)"

    def __getattr__(self, attr: str) -> Any:
        def closed(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("this client was closed; create a new one")

        return closed


CLOSED: Any = _Closed()


async def wait(fut: Any) -> Any:
    """The request was sent when the method was called; this coroutine only
    waits. A coroutine (not the bare future) so that asyncio.create_task(),
    TaskGroup and inspect treat async methods as redis-py's and asyncpg's."""
    return await fut
