"""Pieces every protocol's client uses: the per-URL registry of native
services (so clients with the same URL and options share connections), the
stand-in for a closed client, and the coroutine wrapper of async methods."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

from . import _aio, _native, admin
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


async def lease(svc: Any, timeout: float) -> int:
    """Lease a dedicated connection from `svc` for the running task. If the
    task is cancelled (or times out) while waiting, the connection that
    arrives later is released, never leaked."""
    loop = asyncio.get_running_loop()
    fut = svc.submit_lease(_aio.completer(loop), loop.create_future(), timeout)
    try:
        # The kernel gives up at `timeout` too; the margin lets its answer win.
        conn: int = await asyncio.wait_for(asyncio.shield(fut), timeout + 1)
        return conn
    except BaseException:

        def release_late(f: Any) -> None:
            if not f.cancelled() and f.exception() is None:
                svc.release(f.result())

        fut.add_done_callback(release_late)
        raise
