"""``iokernel.configure``: settings that apply to the whole process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from . import _native

_UNSET: Any = object()


def configure(*, dns_servers: Sequence[str] | None = _UNSET,
              dns_max_ttl: float | None = None) -> dict[str, Any]:
    """Change process-wide settings; returns the settings now.

    ``dns_servers``: the DNS servers the kernel asks to resolve the host
    names in client URLs, as ``"ip[:port]"`` strings (port 53 by default),
    e.g. ``["127.0.0.1:5353"]``; ``None`` goes back to the system's
    ``/etc/resolv.conf``. The environment variable ``IOKERNEL_DNS_SERVERS``
    (comma-separated) sets the same, read once at first use; ``configure``
    overrides it. ``/etc/hosts`` is honoured either way.

    ``dns_max_ttl``: the longest time (seconds, default 60) a DNS answer is
    trusted before the name is asked again, whatever its TTL (names are
    never asked more often than once a second).

    Clients that already exist keep their current endpoints and use the new
    settings from their names' next refresh (at most their TTL, or the old
    ``dns_max_ttl``, later); nothing is reconnected by ``configure`` itself.
    """
    servers, max_ttl = _native.discovery_configure(
        None if dns_servers is _UNSET or dns_servers is None else list(dns_servers),
        dns_servers is not _UNSET,
        dns_max_ttl,
    )
    return {"dns_servers": servers, "dns_max_ttl": max_ttl}
