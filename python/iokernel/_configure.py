"""``iokernel.configure``: settings that apply to the whole process (every
client, every protocol), as opposed to a client's own options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _native, _options

_UNSET: Any = object()


def configure(*, dns_servers: Sequence[str] | None = _UNSET,
              dns_max_ttl: float | None = None,
              max_in_flight: int | None = _UNSET,
              max_queued: int | None = _UNSET,
              loop_batching: bool | None = None) -> dict[str, Any]:
    """Change process-wide settings (an option not given keeps its value);
    returns the settings now.

    ``dns_servers``: the DNS servers the kernel asks to resolve the host
    names in client URLs, as ``"ip[:port]"`` strings (port 53 by default),
    e.g. ``["127.0.0.1:5353"]``; ``None`` goes back to the system's
    ``/etc/resolv.conf``. The environment variable ``IOKERNEL_DNS_SERVERS``
    (comma-separated) sets the same, read once at first use; ``configure``
    overrides it. ``/etc/hosts`` is honoured either way.

    ``dns_max_ttl``: the longest time (seconds, default 60) a DNS answer is
    trusted before the name is asked again, whatever its TTL (names are
    never asked more often than once a second).

    ``max_in_flight``: at most this many requests at once across every
    client of the process, all services together (sent, or waiting for a
    connection); ``max_queued``: at most this many waiting for a connection
    across the process. Each is a whole number from 1 (``max_queued`` from
    0), or None for no cap (the default). A call made past a cap fails at
    once with ``iokernel.OverloadedError`` naming the cap that was hit.
    These caps come on top of each client's own ``max_in_flight`` /
    ``max_queued``, which stay.

    Clients that already exist: they keep their current endpoints and use
    the new DNS settings from their names' next refresh (at most their TTL,
    or the old ``dns_max_ttl``, later); nothing is reconnected by
    ``configure`` itself. The caps apply to them from their next call on;
    requests already sent or queued are not touched (lowering a cap below
    what is in flight fails new calls until enough have finished).

    ``loop_batching`` (default True): requests made from asyncio during one
    turn of the event loop are handed to the kernel together when the turn
    ends, so that they wake it once and go out in one write per connection
    (the way a loop runs, tasks woken together submit together). False
    hands each to the kernel as it is made: its first byte may leave a few
    microseconds sooner, at the price of more wake-ups and writes under
    load. Blocking calls are never held. Applies to calls made from then on.
    """
    cur_in_flight, cur_queued, _, _ = _native.process_limits()
    if max_in_flight is not _UNSET:
        cur_in_flight = None if max_in_flight is None else _options.count(
            "max_in_flight", max_in_flight)
    if max_queued is not _UNSET:
        cur_queued = None if max_queued is None else _options.count(
            "max_queued", max_queued, zero="none may wait")
    servers, max_ttl = _native.discovery_configure(
        None if dns_servers is _UNSET or dns_servers is None else list(dns_servers),
        dns_servers is not _UNSET,
        dns_max_ttl,
    )
    _native.configure_limits(cur_in_flight, cur_queued)
    batching = _native.loop_batching(
        None if loop_batching is None else _options.flag("loop_batching", loop_batching))
    return {"dns_servers": servers, "dns_max_ttl": max_ttl,
            "max_in_flight": cur_in_flight, "max_queued": cur_queued,
            "loop_batching": batching}


def limits() -> dict[str, int | None]:
    """The process-wide caps now (None: no cap), and the requests that
    count against them: ``in_flight`` (sent or waiting) and ``queued``
    (waiting for a connection), across every client of the process."""
    cap_in, cap_q, in_flight, queued = _native.process_limits()
    return {"max_in_flight": cap_in, "max_queued": cap_q, "in_flight": in_flight, "queued": queued}
