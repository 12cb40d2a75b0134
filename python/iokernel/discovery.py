"""Endpoints from anywhere: a plug-in publishes address sets, clients follow them.

A *source* is a process-wide named set of addresses. Code that watches a
registry of its own (ZooKeeper with kazoo, Consul, a Kubernetes watch, ...)
publishes each new set from whatever thread it runs on; every client whose
URL names the source follows it::

    from iokernel import discovery, redis

    src = discovery.Source("orders-cache")
    src.publish(["10.1.0.5:6379", "10.1.0.6:6379"])         # or (addr, weight) pairs
    r = redis.Redis("redis+discovery://orders-cache/0")      # postgresql+discovery://user@name/db

``publish`` is thread-safe and cheap (a lock, a look-up, a wake-up); new
requests go to the new set as soon as the kernel thread has seen it and has
a connection to the new endpoints (within milliseconds). Removed endpoints
take no new requests and close once their in-flight requests are answered.
The kernel never calls back into Python.

Host names (not IP addresses) in a set are connected to as they are; the
kernel follows DNS only for names in a client's URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from . import _native

__all__ = ["Source"]

Entries = Iterable[str | tuple[str, int]] | Mapping[str, int]


class Source:
    """A named, process-wide set of endpoints that clients can follow.

    Every ``Source("name")`` is a handle on the same set; clients use it
    with the URL ``redis+discovery://name/0`` or
    ``postgresql+discovery://user@name/db``. A client created before the
    first ``publish`` has no endpoint until then (its requests fail with
    ``iokernel.ConnectionError``, reason ``no_endpoint``).
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name or "/" in name or ":" in name:
            raise ValueError(
                f"a discovery source name is a non-empty string without '/' or ':', not {name!r}"
            )
        self.name = name

    def publish(self, endpoints: Entries) -> None:
        """Replace the set: ``"host:port"`` strings (``"[::1]:6379"``,
        ``"unix:/path"``), ``("host:port", weight)`` pairs, or a mapping of
        address to weight (weight 0 takes no traffic). Raises ValueError,
        publishing nothing, if an entry is malformed."""
        if isinstance(endpoints, str):
            raise TypeError("publish() takes a list of \"host:port\" strings, not one string")
        if not isinstance(endpoints, (Iterable, Mapping)):
            raise TypeError(
                f"discovery source {self.name!r}: publish() takes a list of \"host:port\" "
                f"strings, (\"host:port\", weight) pairs or a mapping, not "
                f"{type(endpoints).__name__}; nothing was published"
            )
        items: list[tuple[str, int]] = []
        pairs = endpoints.items() if isinstance(endpoints, Mapping) else endpoints
        for e in pairs:
            if isinstance(e, str):
                items.append((e, 1))
            elif isinstance(e, tuple) and len(e) == 2 and isinstance(e[0], str):
                weight = e[1]
                if not isinstance(weight, int) or isinstance(weight, bool) or weight < 0:
                    raise ValueError(
                        f"discovery source {self.name!r}: weight of {e[0]!r} must be an "
                        f"int >= 0, not {weight!r}; nothing was published"
                    )
                items.append((e[0], weight))
            else:
                raise TypeError(
                    f"discovery source {self.name!r}: expected \"host:port\" or "
                    f"(\"host:port\", weight), not {e!r}; nothing was published"
                )
        _native.discovery_publish(self.name, items)

    def current(self) -> list[tuple[str, int]] | None:
        """The set published now as ``(address, weight)`` pairs, or None."""
        return _native.discovery_current(self.name)

    def __repr__(self) -> str:
        return f"Source({self.name!r})"
