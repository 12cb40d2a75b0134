"""``rediss+sentinel://`` against real redis-server and redis-sentinel
processes that talk TLS to each other (tests/servers/sentinel_group.py
with ``GroupTls``): the client reaches the sentinels and the data nodes
over TLS, checks each sentinel's certificate against the name the URL gives
it and each data node's (announced by Sentinel as an IP address) against
the certificate's IP SANs; a certificate that does not fit, or a CA the
client does not trust, ends in a typed error within the connect timeout,
never in plain text (``TLSError`` naming every sentinel when the handshake
fails with all of them); a SENTINEL FAILOVER under load moves the writes to
the new primary over TLS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import iokernel
from iokernel import redis
from tests.integration.sentinel.test_sentinel_failover import TASKS, check, failover_under_load
from tests.servers import SentinelGroup, dead_port, resp_pipeline
from tests.servers.sentinel_group import GroupTls
from tests.tls.certs import Certs, Pair

pytestmark = pytest.mark.timeout(240)

Make = Callable[[Pair, Pair], SentinelGroup]


def group_tls(certs: Certs, data: Pair, sentinels: Pair) -> GroupTls:
    return GroupTls(ca=certs.ca, data=(data.cert, data.key),
                    sentinels=(sentinels.cert, sentinels.key))


@pytest.fixture
def make_group(certs: Certs) -> Iterator[Make]:
    """A fresh TLS group per call: (data nodes' pair, sentinels' pair)."""
    made: list[SentinelGroup] = []

    def make(data: Pair, sentinels: Pair) -> SentinelGroup:
        g = SentinelGroup(tls=group_tls(certs, data, sentinels))
        made.append(g)
        g.start()
        return g

    try:
        yield make
    finally:
        for g in made:
            g.stop()


@pytest.fixture(scope="module")
def tls_group(certs: Certs) -> Iterator[SentinelGroup]:
    """Data nodes with a certificate for 127.0.0.1 (and localhost), the
    sentinels with one for the name localhost only (no IP address)."""
    with SentinelGroup(tls=group_tls(certs, certs.server, certs.localhost_only)) as g:
        yield g


def by_address(c: Any) -> dict[str, dict[str, Any]]:
    return {e["address"]: e for e in c.endpoints()}


def names_every_sentinel(g: SentinelGroup, e: BaseException, host: str = "127.0.0.1") -> str:
    """`e`'s message, which names each sentinel of `g` (at its TLS port)."""
    text = str(e)
    for s in g.sentinels:
        assert f"{host}:{s.tls_port}" in text, text
    return text


async def set_fails_with(c: redis.AsyncClient, reason: str, node: tuple[str, int]) -> str:
    """A write fails with TLSError `reason` naming `node`, well before the
    20 s request timeout (the connect timeout is 5 s; slack for a loaded
    machine). Returns the message."""
    start = time.monotonic()
    with pytest.raises(iokernel.TLSError) as t:
        await c.set("tls:never", "x")
    assert time.monotonic() - start < 15
    assert t.value.tls_reason == reason, t.value
    assert f"{node[0]}:{node[1]}" in str(t.value), t.value
    return str(t.value)


async def test_reads_and_writes_over_tls_through_the_sentinels(
        tls_group: SentinelGroup, certs: Certs) -> None:
    g = tls_group
    assert g.replica is not None
    # The sentinels by name: their certificate has localhost, no IP address.
    c = redis.AsyncClient(g.url(db=3, host="localhost"), ssl_ca_certs=certs.ca,
                          read_from="replica", timeout=10)
    try:
        await c.ready(timeout=30)
        eps = by_address(c)
        p, r = g.addr(g.primary), g.addr(g.replica)
        # The announced addresses are the TLS ports (plain text there fails).
        assert eps[f"{p[0]}:{p[1]}"]["role"] == "primary"
        assert eps[f"{r[0]}:{r[1]}"]["role"] == "replica"
        assert await c.set("tls:k", "v") is True
        assert resp_pipeline(g.primary.host, g.primary.port,
                             [("SELECT", "3"), ("GET", "tls:k")])[1] == b"v"
        deadline = time.monotonic() + 30
        while await c.get("tls:k") != b"v":  # read on the replica, once replicated
            assert time.monotonic() < deadline, "the write never reached the replica"
            await asyncio.sleep(0.05)
        stats = c._svc.stats()
        assert stats["tls_handshakes"] >= 2, stats  # one per data node at least
    finally:
        await c.close()


async def test_a_sentinel_is_checked_against_the_name_in_the_url(
        tls_group: SentinelGroup, certs: Certs) -> None:
    # The same sentinels by IP address: their certificate has no IP SAN.
    c = redis.AsyncClient(tls_group.url(), ssl_ca_certs=certs.ca, connect_timeout=5)
    start = time.monotonic()
    try:
        # Every sentinel fails its handshake: TLSError (a ConnectionError).
        with pytest.raises(iokernel.TLSError) as e:
            await c.ready(timeout=20)
        assert time.monotonic() - start < 5, "not within the connect timeout"
        assert isinstance(e.value, iokernel.ConnectionError)
        assert e.value.tls_reason == "hostname_mismatch", e.value
        text = names_every_sentinel(tls_group, e.value)
        assert "host-name mismatch" in text and "sentinel_ssl_check_hostname" in text, text
        # No sentinel's answer, so no endpoint: a call fails the same way.
        with pytest.raises(iokernel.TLSError, match="host-name mismatch") as e:
            await c.get("k")
        assert e.value.tls_reason == "hostname_mismatch", e.value
        names_every_sentinel(tls_group, e.value)
    finally:
        await c.close()


async def test_plain_text_sentinels_with_sentinel_ssl_false(
        tls_group: SentinelGroup, certs: Certs) -> None:
    # sentinel_ssl=False: the sentinels' plain ports; the data nodes over TLS.
    c = redis.AsyncClient(tls_group.url(plain_sentinels=True), ssl_ca_certs=certs.ca,
                          sentinel_ssl=False, timeout=10)
    try:
        await c.ready(timeout=30)
        assert await c.set("tls:plain-sentinels", "1") is True
        assert tls_group.primary.command_raw("GET", "tls:plain-sentinels") == b"1"
        assert c._svc.stats()["tls_handshakes"] >= 1
    finally:
        await c.close()
    # ... and TLS to a plain-text sentinel port fails (it waits for a line
    # the ClientHello never ends: bounded), never read as Redis.
    c = redis.AsyncClient(tls_group.url(plain_sentinels=True), ssl_ca_certs=certs.ca,
                          connect_timeout=5)
    try:
        with pytest.raises(iokernel.ConnectionError) as e:
            await c.ready(timeout=20)
        s = tls_group.sentinels[0]
        assert f"127.0.0.1:{s.port}" in str(e.value), e.value
    finally:
        await c.close()


async def test_a_ca_the_client_does_not_trust(tls_group: SentinelGroup, certs: Certs) -> None:
    # The wrong CA for everything: the sentinels fail first.
    c = redis.AsyncClient(tls_group.url(host="localhost"), ssl_ca_certs=certs.other_ca,
                          connect_timeout=5)
    start = time.monotonic()
    try:
        with pytest.raises(iokernel.TLSError) as e:
            await c.ready(timeout=20)
        assert time.monotonic() - start < 5
        assert e.value.tls_reason == "unknown_ca", e.value
        text = names_every_sentinel(tls_group, e.value, "localhost")
        assert "unknown CA" in text and "sentinel_ssl_ca_certs" in text, text
        with pytest.raises(iokernel.TLSError, match="unknown CA") as e:
            await c.set("tls:never", "x")
        assert e.value.tls_reason == "unknown_ca", e.value
    finally:
        await c.close()
    # One sentinel down, the others failing their handshake: still TLS.
    s0 = tls_group.sentinels[0]
    url = tls_group.url(host="localhost").replace(
        f"localhost:{s0.tls_port}", f"localhost:{dead_port()}")
    c = redis.AsyncClient(url, ssl_ca_certs=certs.other_ca, connect_timeout=5)
    try:
        with pytest.raises(iokernel.TLSError) as e:
            await c.ready(timeout=20)
        assert e.value.tls_reason == "unknown_ca", e.value
    finally:
        await c.close()
    # Trusted sentinels (a CA of their own), untrusted data nodes: a call
    # fails with TLSError naming the data node, within the connect timeout.
    c = redis.AsyncClient(tls_group.url(host="localhost"), ssl_ca_certs=certs.other_ca,
                          sentinel_kwargs={"ssl_ca_certs": certs.ca}, connect_timeout=5,
                          timeout=20)
    try:
        await set_fails_with(c, "unknown_ca", tls_group.addr(tls_group.primary))
    finally:
        await c.close()
    assert tls_group.primary.command_raw("EXISTS", "tls:never") == 0


async def test_an_announced_ip_is_checked_against_ip_sans(make_group: Make,
                                                          certs: Certs) -> None:
    # Data nodes whose certificate names localhost only: Sentinel gives
    # 127.0.0.1, which it does not have (redis-py#3629 checked the name).
    g = make_group(certs.localhost_only, certs.server)
    c = redis.AsyncClient(g.url(host="localhost"), ssl_ca_certs=certs.ca,
                          connect_timeout=5, timeout=20)
    try:
        msg = await set_fails_with(c, "hostname_mismatch", g.addr(g.primary))
        assert '"127.0.0.1"' in msg and "ssl_check_hostname" in msg, msg
    finally:
        await c.close()
    # No plain-text fallback: nothing was written.
    assert g.primary.command_raw("EXISTS", "tls:never") == 0
    # Without the host-name check (the chain still verified) it works.
    c = redis.AsyncClient(g.url(host="localhost"), ssl_ca_certs=certs.ca,
                          ssl_check_hostname=False, timeout=10)
    try:
        assert await c.set("tls:k", "v") is True
    finally:
        await c.close()


async def test_sentinel_failover_over_tls(make_group: Make, certs: Certs) -> None:
    g = make_group(certs.server, certs.server)  # its URL names 127.0.0.1
    out, lost = await failover_under_load(g, "failover", ssl_ca_certs=certs.ca)
    check(out, lost, 2 * TASKS)


def test_sentinel_tls_options_are_checked(certs: Certs) -> None:
    url = "rediss+sentinel://localhost:1/mymaster"
    with pytest.raises(ValueError, match=r"rediss\+sentinel"):
        redis.Client("rediss://localhost:1/0", sentinel_ssl=True)
    with pytest.raises(ValueError, match="plain text"):
        redis.Client("redis+sentinel://localhost:1/m?sentinel_ssl_ca_certs=%2Fca.pem")
    with pytest.raises(ValueError, match=r"sentinels' TLS options.*ssl_ca_certs"):
        redis.Client(url, sentinel_kwargs={"ssl_ca_certs": "/nonexistent/ca.pem"})
    with pytest.raises(TypeError, match="sentinel_kwargs: socket_timeout"):
        redis.Client(url, sentinel_kwargs={"socket_timeout": 1})
    with pytest.raises(TypeError, match="dict"):
        redis.Client(url, sentinel_kwargs=[("ssl", True)])
    # Each is accepted as given (nothing connects until a call).
    for kw in ({"sentinel_ssl": False}, {"sentinel_kwargs": {"ssl_ca_certs": certs.ca}},
               {"sentinel_kwargs": {"ssl": False, "password": "pw"}}):
        redis.Client(url, ssl_ca_certs=certs.ca, **kw).close()
