"""A client's view of its endpoints: ``endpoints()``, and waiting until
every one is connected and discovery's watches are in place (the sentinel
watch subscribed on every sentinel it can reach) (``wait_ready`` / ``await
ready``), shared by the Redis and PostgreSQL clients, sync and async. The
kernel connects to every endpoint as soon as it is known; these only
look."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

from . import _options
from ._errors import ConnectionError, TLSError

# States of an endpoint that has a connection up.
_CONNECTED = ("up", "ejected")


def _not_ready(eps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in eps if e["state"] not in _CONNECTED]


def _error(name: str, eps: list[dict[str, Any]], timeout: float,
           pending: str) -> ConnectionError:
    bad = _not_ready(eps)
    if not eps:
        return ConnectionError(f"{name}: no endpoints after {timeout:g} s")
    if not bad:
        return ConnectionError(
            f"{name}: {pending} not in place after {timeout:g} s (not subscribed on every "
            "sentinel that answers yet): a failover now could go unheard"
        )
    why = "; ".join(
        f"{e['address']} ({e['state']}"
        + (f": {e['last_error']}" if e["last_error"] else "")
        + ")"
        for e in bad
    )
    return ConnectionError(
        f"{name}: {len(bad)} of {len(eps)} endpoints not connected after {timeout:g} s: {why}"
    )


def _problem_error(svc: Any, problem: str) -> ConnectionError:
    """The error of discovery's `problem`: ``TLSError`` (with
    ``tls_reason``) when TLS failures are why, as a call would raise."""
    reason = svc.discovery_tls_reason()
    if reason is None:
        return ConnectionError(f"{svc.name}: {problem}")
    e = TLSError(f"{svc.name}: {problem}")
    e.tls_reason = reason
    e.reason = "no_endpoint"
    e.stage = "not_sent"
    return e


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
        """Return once every current endpoint has a connection up and
        discovery's watches are in place (Sentinel: subscribed to the
        failover announcements on every sentinel that answers, so a
        failover from then on is followed); after ``timeout`` seconds raise
        ``iokernel.ConnectionError`` naming the endpoints that have none,
        and why. Discovery that found nothing raises at once (``TLSError``
        when every sentinel reached failed its TLS handshake)."""
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
            # Pending first: once it is "", the endpoints asked for next
            # include the set the watch published before it settled.
            pending = str(self._svc.discovery_pending())
            eps = self.endpoints()
            if eps and not _not_ready(eps) and not pending:
                return
            problem = str(self._svc.discovery_problem())
            if not eps and problem:
                # Discovery answered with no endpoints (a sentinel that
                # knows no such master, ...): waiting would not help.
                raise _problem_error(self._svc, problem)
            if time.monotonic() >= end:
                raise _error(self._svc.name, eps, timeout, pending)
            yield _delay(step)
            step += 1
