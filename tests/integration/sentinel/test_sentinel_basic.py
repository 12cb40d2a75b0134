"""``redis+sentinel://`` against real sentinels (tests/servers/sentinel_group.py):
the client finds the primary and the replica through the sentinels, writes
go to the primary, ``read_from`` sends read-only commands to the replica
(proved by the servers' own command counts), a sentinel that is down is
skipped, a master no sentinel knows is a clear ``ConnectionError`` at
``ready()`` and at the first call, not a hang, and ``ready()`` returns only
once the client is subscribed on every sentinel that is up."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import pytest

import iokernel
from iokernel import redis
from tests.faults.relay import Relay
from tests.integration.sentinel.load import wait_for
from tests.servers import RedisServer, SentinelGroup, dead_port, resp_pipeline

pytestmark = pytest.mark.timeout(120)


def gets(node: RedisServer) -> int:
    """GET commands the server ran since its last CONFIG RESETSTAT."""
    text = node.command_raw("INFO", "commandstats").decode()
    for line in text.splitlines():
        if line.startswith("cmdstat_get:"):
            return int(line.split("calls=")[1].split(",")[0])
    return 0


def by_address(c: Any) -> dict[str, dict[str, Any]]:
    return {e["address"]: e for e in c.endpoints()}


async def test_connects_through_the_sentinels(group: SentinelGroup) -> None:
    assert group.replica is not None
    c = redis.AsyncClient(group.url(db=2))
    try:
        await c.ready(timeout=30)
        eps = by_address(c)
        p, r = group.primary, group.replica
        assert eps[f"{p.host}:{p.port}"]["role"] == "primary"
        assert eps[f"{r.host}:{r.port}"]["role"] == "replica"
        assert {e["origin"] for e in eps.values()} == {"sentinel:mymaster"}
        assert await c.set("s:k", "v") is True
        assert await c.get("s:k") == b"v"
        # The write is on the primary, in the URL's database.
        assert resp_get(p, 2, "s:k") == b"v"
    finally:
        await c.close()


def resp_get(node: RedisServer, db: int, k: str) -> Any:
    return resp_pipeline(node.host, node.port, [("SELECT", str(db)), ("GET", k)])[1]


@pytest.mark.parametrize("read_from", ["replica", "prefer_replica"])
async def test_reads_go_to_the_replica_writes_to_the_primary(
    group: SentinelGroup, read_from: str
) -> None:
    r = group.replica
    assert r is not None
    c = redis.AsyncClient(group.url(), read_from=read_from)
    try:
        await c.ready(timeout=30)
        await c.set("s:read", "x")
        await wait_for(lambda: r.command_raw("GET", "s:read") == b"x", 30, "replicated")
        for n in group.data_nodes:
            n.command_raw("CONFIG", "RESETSTAT")
        got = await asyncio.gather(*(c.get("s:read") for _ in range(200)))
        assert got == [b"x"] * 200
        assert gets(r) == 200
        assert gets(group.primary) == 0
        # A write with a read rule still goes to the primary (no READONLY).
        assert await c.set("s:read", "y") is True
        assert group.primary.command_raw("GET", "s:read") == b"y"
    finally:
        await c.close()


async def test_prefer_replica_falls_back_to_the_primary(group: SentinelGroup) -> None:
    r = group.replica
    assert r is not None
    c = redis.AsyncClient(group.url(), read_from="prefer_replica")
    try:
        await c.ready(timeout=30)
        await c.set("s:fb", "1")
        r.stop()
        # Every read answers (from the primary once the replica is gone),
        # none fails: reads on the lost connection are sent again.
        for _ in range(50):
            assert await c.get("s:fb") == b"1"
        group.primary.command_raw("CONFIG", "RESETSTAT")
        for _ in range(20):
            assert await c.get("s:fb") == b"1"
        assert gets(group.primary) == 20
    finally:
        await c.close()


# How long each sentinel's relay holds the client's SUBSCRIBE back: longer
# than the client takes to find and connect to the data nodes on loopback,
# well within the 1 s the watch gives a sentinel to confirm a subscription.
HOLD_SUBSCRIBE = 0.3


def hold_subscribe(i: int, chunk: bytes) -> None:
    if b"SUBSCRIBE" in chunk.upper():
        time.sleep(HOLD_SUBSCRIBE)


async def test_ready_means_subscribed_on_every_sentinel(group: SentinelGroup) -> None:
    """ready() alone suffices: when it returns, every sentinel already
    lists the client's subscription (no waiting), even when subscribing
    is slower than connecting to the data nodes (each sentinel behind a
    relay that holds SUBSCRIBE back: before, ready() returned without
    them); a failover started at once is followed (writes go to the new
    primary)."""
    new = group.replica
    assert new is not None
    assert group.subscribed() == 0  # a fresh group: nobody else subscribes
    with contextlib.ExitStack() as stack:
        relays = [stack.enter_context(Relay((s.host, s.port), delay=lambda i: 0.0,
                                            max_conns=100_000, watch_up=hold_subscribe))
                  for s in group.sentinels]
        hosts = ",".join(f"{r.host}:{r.port}" for r in relays)
        c = redis.AsyncClient(f"redis+sentinel://{hosts}/mymaster/0", timeout=10)
        try:
            await c.ready(timeout=30)
            assert group.subscribed() == len(group.sentinels)
            await follows_a_failover(c, group, new)
        finally:
            await c.close()


async def follows_a_failover(c: redis.AsyncClient, group: SentinelGroup,
                             new: RedisServer) -> None:
    """Fail over to `new` at once; writes through `c` then reach it."""
    await asyncio.to_thread(group.failover)
    await asyncio.to_thread(group.wait_master, new, 60)
    # Writes reach the new primary (a write the old one took before it was
    # turned into a replica is not there: try another).
    keys = itertools.count()

    async def lands() -> bool:
        k = f"s:follow:{next(keys)}"
        try:
            await c.set(k, "1")
        except iokernel.Error:
            return False  # the old primary, now a replica (READONLY)
        return new.command_raw("GET", k) == b"1"

    deadline = time.monotonic() + 30
    while not await lands():
        assert time.monotonic() < deadline, "no write reached the new primary"
        await asyncio.sleep(0.05)
    assert by_address(c)[f"{new.host}:{new.port}"]["role"] == "primary"


async def test_a_sentinel_down_is_skipped(group: SentinelGroup) -> None:
    group.sentinels[0].stop()
    c = redis.AsyncClient(group.url())
    try:
        await c.ready(timeout=30)
        # ready() does not wait for the sentinel that is down, but is
        # subscribed on the others.
        assert group.subscribed() == len(group.sentinels) - 1
        await c.set("s:down", "1")
        assert group.primary.command_raw("GET", "s:down") == b"1"
    finally:
        await c.close()


async def test_unknown_master_is_a_clear_error(group: SentinelGroup) -> None:
    c = redis.AsyncClient(group.url(master="nosuch"))
    try:
        with pytest.raises(iokernel.ConnectionError, match='no master named "nosuch"') as e:
            await c.ready(timeout=30)
        assert not isinstance(e.value, iokernel.TLSError)
        with pytest.raises(iokernel.ConnectionError, match='no master named "nosuch"'):
            await c.get("x")
    finally:
        await c.close()


async def test_no_sentinel_answering_is_a_clear_error() -> None:
    url = f"redis+sentinel://127.0.0.1:{dead_port()},127.0.0.1:{dead_port()}/mymaster/0"
    c = redis.AsyncClient(url)
    try:
        with pytest.raises(iokernel.ConnectionError, match="no sentinel gave the address"):
            await c.ready(timeout=30)
    finally:
        await c.close()


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="read_from must be"):
        redis.Client("redis+sentinel://127.0.0.1:1/m/0", read_from="nearest")
    with pytest.raises(ValueError, match="redis\\+sentinel"):
        redis.Client("redis://127.0.0.1:1/0", sentinel_password="x")
    with pytest.raises(ValueError, match="name the master"):
        redis.Client("redis+sentinel://127.0.0.1:1/")
    with pytest.raises(TypeError, match="sentinel_password"):
        redis.Client("redis+sentinel://127.0.0.1:1/m", sentinel_password=b"x")
