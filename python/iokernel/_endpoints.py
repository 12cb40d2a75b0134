"""A client's view of its endpoints: ``endpoints()``, and waiting until
every one is connected (``wait_ready`` / ``await ready``), shared by the
Redis and PostgreSQL clients, sync and async. The kernel connects to every
endpoint as soon as it is known; these only look."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from . import _options
from ._errors import ConnectionError

# States of an endpoint that has a connection up.
_CONNECTED = ("up", "ejected")


def _not_ready(eps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in eps if e["state"] not in _CONNECTED]


def _error(name: str, eps: list[dict[str, Any]], timeout: float) -> ConnectionError:
    bad = _not_ready(eps)
    if not eps:
        return ConnectionError(f"{name}: no endpoints after {timeout:g} s")
    why = "; ".join(
        f"{e['address']} ({e['state']}"
        + (f": {e['last_error']}" if e["last_error"] else "")
        + ")"
        for e in bad
    )
    return ConnectionError(
        f"{name}: {len(bad)} of {len(eps)} endpoints not connected after {timeout:g} s: {why}"
    )


def _discovery_problem(svc: Any) -> str:
    """Why discovery gave `svc` no endpoints ("" if it did, or if the
    protocol's service does not say)."""
    ask = getattr(svc, "discovery_problem", None)
    return str(ask()) if ask is not None else ""


def _delay(step: int) -> float:
    return min(0.002 * 2.0**step, 0.05)


class Endpoints:
    """Mixed into the clients (which have ``_svc``)."""

    _svc: Any

    def endpoints(self) -> list[dict[str, Any]]:
        """One dict per current endpoint: ``address`` ("ip:port" or a
        path), ``origin`` (the name it came from), ``state`` ("up",
        "ejected": up but failing and given no traffic for a while, "down":
        connection attempts fail, "connecting"), ``role``, ``connections``,
        ``in_flight``, ``latency_ms`` (the balancer's Peak-EWMA estimate),
        ``requests``, ``errors`` (failed requests and connection attempts)
        and ``last_error`` (text or None)."""
        return self._svc.endpoints()  # type: ignore[no-any-return]

    def wait_ready(self, timeout: float = 5.0) -> None:
        """Return once every current endpoint has a connection up; after
        ``timeout`` seconds raise ``iokernel.ConnectionError`` naming the
        endpoints that have none, and why."""
        for pause in self._ready_pauses(timeout):
            time.sleep(pause)

    async def ready(self, timeout: float = 5.0) -> None:
        """``await client.ready(timeout)``: as ``wait_ready``, without
        blocking the event loop."""
        for pause in self._ready_pauses(timeout):
            await asyncio.sleep(pause)

    def _ready_pauses(self, timeout: float) -> Iterator[float]:
        """The pauses between looks while some endpoint is not connected
        (growing from 2 ms to 50 ms); ends once all are, raises the
        ``ConnectionError`` naming them after ``timeout`` seconds."""
        timeout = _options.seconds("timeout", timeout)
        end = time.monotonic() + timeout
        step = 0
        while True:
            eps = self.endpoints()
            if eps and not _not_ready(eps):
                return
            problem = _discovery_problem(self._svc)
            if not eps and problem:
                # Discovery answered with no endpoints (a sentinel that
                # knows no such master, ...): waiting would not help.
                raise ConnectionError(f"{self._svc.name}: {problem}")
            if time.monotonic() >= end:
                raise _error(self._svc.name, eps, timeout)
            yield _delay(step)
            step += 1
