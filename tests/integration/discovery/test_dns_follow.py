"""A name followed through a real DNS server (dnsmasq, TTL 1 s) while 50
tasks keep a client busy: it moves, grows, shrinks, and its server goes
away; the query log shows how often names are asked. Each test prints what
it measured."""

from __future__ import annotations

import asyncio
import time

import pytest

import iokernel
from iokernel import redis
from tests.integration.discovery.conftest import ADDRS
from tests.integration.discovery.load import Load, blocking, until
from tests.servers.dns_server import DnsServer
from tests.servers.redis_server import RedisServer

TTL = 1.0


def client(port: int, name: str = "move.test") -> redis.AsyncClient:
    return redis.AsyncClient(f"redis://{name}:{port}/0")


async def test_a_moved_name_is_followed_under_load_without_failures(
    dns: DnsServer, trio: dict[str, RedisServer]
) -> None:
    a = trio["a"]
    r = client(a.port)
    async with Load(r, tasks=50) as load:
        await until(lambda: load.counts().get("a", 0) > 200, 30, "traffic on a")
        await asyncio.to_thread(dns.set_hosts, {"move.test": [ADDRS["b"]]})
        moved = time.monotonic()
        await until(lambda: load.settled_at(moved, "b") is not None
                    and load.counts(time.monotonic() - 0.3).get("b", 0) > 50, 30,
                    "requests reaching b")
        # The old connection closes once idle, while the client stays busy.
        idle = await until(blocking(lambda: a.client_count() == 0), 30, "a's connection closed")
    settled = load.settled_at(moved, "b")
    assert settled is not None
    follow = settled - moved
    print(f"\nmove a->b under 50 tasks: new requests all on b {follow * 1000:.0f} ms after "
          f"the DNS change (TTL {TTL:.0f} s); {len(load.done)} requests, "
          f"{len(load.errors)} failed; after the change: {load.counts(moved)}")
    assert not load.errors, f"requests failed during the move: {load.errors[:3]}"
    assert follow <= TTL + 1.0, f"took {follow:.2f} s to follow (TTL {TTL} s)"
    print(f"old endpoint's connection closed (under load) {idle * 1000:.0f} ms after b took "
          "all new requests")
    await r.close()


async def test_an_added_address_takes_traffic_only_once_connected(
    dns: DnsServer, trio: dict[str, RedisServer]
) -> None:
    a, c = trio["a"], trio["c"]
    c.stop()  # 127.0.0.4 is in DNS but nothing listens there yet
    r = client(a.port)
    async with Load(r, tasks=50) as load:
        await until(lambda: load.counts().get("a", 0) > 200, 30, "traffic on a")
        await asyncio.to_thread(dns.set_hosts, {"move.test": [ADDRS["a"], ADDRS["c"]]})
        added = time.monotonic()
        # The kernel now knows c (it asks DNS every second) but cannot connect:
        # requests keep going to a, none fails.
        await asyncio.sleep(TTL + 1.5)
        assert not load.errors, f"requests failed while c was down: {load.errors[:3]}"
        assert load.counts(added).get("a", 0) > 100
        await asyncio.to_thread(c.restart)
        await asyncio.to_thread(c.command_raw, "SET", "who", "c")
        up = time.monotonic()
        took = await until(lambda: load.counts(up).get("c", 0) > 20, 30, "traffic on c")
    print(f"\nadded endpoint (down at first): 0 requests failed of {len(load.done)}; "
          f"traffic on it {took * 1000:.0f} ms after it came up; since: {load.counts(up)}")
    assert not load.errors, f"requests failed: {load.errors[:3]}"
    await r.close()


async def test_a_removed_address_fails_no_request_in_flight_on_it(
    dns: DnsServer, trio: dict[str, RedisServer]
) -> None:
    a, b = trio["a"], trio["b"]
    await asyncio.to_thread(dns.set_hosts, {"move.test": [ADDRS["a"], ADDRS["b"]]})
    r = client(a.port)
    async with Load(r, tasks=50) as load:
        await until(lambda: load.counts().get("b", 0) > 100 and load.counts().get("a", 0) > 100,
                    30, "traffic on a and b")
        with b.frozen():  # requests on b stay in flight
            asked = dns.query_count("move.test")
            await asyncio.to_thread(dns.set_hosts, {"move.test": [ADDRS["a"]]})
            # The kernel has asked again (and so seen b go) once a new query
            # is logged; give it a moment to apply the answer.
            await until(lambda: dns.query_count("move.test") > asked, 30, "a new DNS query")
            await asyncio.sleep(0.3)
            thawed = time.monotonic()
        await until(lambda: load.counts(time.monotonic() - 0.3).get("a", 0) > 50, 30,
                    "traffic on a")
        await asyncio.sleep(0.3)
    late_b = [d for d in load.done if d[2] == "b" and d[1] >= thawed]
    print(f"\nremoved endpoint: {len(late_b)} requests in flight on it during the removal "
          f"answered after it resumed, {len(load.errors)} failed of {len(load.done)}; "
          f"new requests since: {load.counts(thawed)}")
    assert not load.errors, f"requests failed: {load.errors[:3]}"
    assert late_b, "no request was in flight on the removed endpoint (the test proved nothing)"
    assert all(d[0] < thawed for d in late_b), "b took new requests after it was removed"
    await until(blocking(lambda: b.client_count() == 0), 30, "b's connection closed")
    await r.close()


async def test_dns_down_keeps_the_last_good_set(
    dns: DnsServer, trio: dict[str, RedisServer]
) -> None:
    a = trio["a"]
    await asyncio.to_thread(dns.set_hosts, {"move.test": [ADDRS["a"], ADDRS["b"]]})
    r = client(a.port)
    async with Load(r, tasks=50) as load:
        await until(lambda: load.counts().get("b", 0) > 100 and load.counts().get("a", 0) > 100,
                    30, "traffic on a and b")
        await asyncio.to_thread(dns.stop)
        down = time.monotonic()
        await asyncio.sleep(4 * TTL)
        during = load.counts(down)
        await asyncio.to_thread(dns.restart)
        await asyncio.sleep(2 * TTL)
    print(f"\nDNS server down for {4 * TTL:.0f} s: {len(load.errors)} failed; requests "
          f"meanwhile per endpoint: {during}")
    assert not load.errors, f"requests failed: {load.errors[:3]}"
    assert during.get("a", 0) > 50 and during.get("b", 0) > 50, during
    await r.close()


async def test_a_name_is_asked_no_more_often_than_its_ttl(
    dns: DnsServer, trio: dict[str, RedisServer]
) -> None:
    a = trio["a"]
    slow = client(a.port, "slow.test")  # TTL 5 s (host-record)
    fast = client(a.port, "move.test")  # TTL 1 s
    assert await slow.get("who") == b"a" and await fast.get("who") == b"a"
    window = 11.0
    slow0, fast0 = dns.query_count("slow.test"), dns.query_count("move.test")
    await asyncio.sleep(window / 2)  # idle
    async with Load(slow, tasks=50):  # busy
        await asyncio.sleep(window / 2)
    n_slow = dns.query_count("slow.test") - slow0
    n_fast = dns.query_count("move.test") - fast0
    print(f"\nA queries in {window:.0f} s (half idle, half under 50 tasks): slow.test (TTL 5 s) "
          f"{n_slow}, move.test (TTL 1 s) {n_fast}")
    assert 1 <= n_slow <= window // 5 + 1, n_slow
    assert n_fast >= window / 2, f"the TTL-1 name was asked only {n_fast} times: not followed?"
    await slow.close()
    await fast.close()


async def test_configure_moves_existing_clients_to_the_new_servers_at_their_next_refresh(
    dns: DnsServer, trio: dict[str, RedisServer]
) -> None:
    a = trio["a"]
    other = DnsServer(hosts={"move.test": [ADDRS["c"]]})
    other.start()
    try:
        r = client(a.port)
        assert await r.get("who") == b"a"
        iokernel.configure(dns_servers=[other.address])
        switched = time.monotonic()
        async with Load(r, tasks=10) as load:
            await until(lambda: load.settled_at(switched, "c") is not None
                        and load.counts(time.monotonic() - 0.2).get("c", 0) > 20, 30,
                        "requests reaching c (named by the new DNS server)")
        settled = load.settled_at(switched, "c")
        assert settled is not None
        print(f"\nconfigure(dns_servers=[another]): an existing client moved "
              f"{(settled - switched) * 1000:.0f} ms later; {len(load.errors)} failed")
        assert not load.errors, load.errors[:3]
        assert other.query_count("move.test") >= 1
        await r.close()
    finally:
        iokernel.configure(dns_servers=[dns.address])
        other.stop(cleanup=True)


def test_endpoints_and_wait_ready_show_what_a_name_resolved_to(
    dns: DnsServer, trio: dict[str, RedisServer]
) -> None:
    a, c = trio["a"], trio["c"]
    c.stop()  # 127.0.0.4 resolves but nothing listens there
    dns.set_hosts({"move.test": [ADDRS["a"], ADDRS["c"]]})
    r = redis.Client(f"redis://move.test:{a.port}/0")
    with pytest.raises(iokernel.ConnectionError, match=r"127\.0\.0\.4") as e:
        r.wait_ready(2.0)
    assert "127.0.0.2" not in str(e.value).split("connected after")[1], e.value
    eps = {ep["address"]: ep for ep in r.endpoints()}
    assert set(eps) == {f"127.0.0.2:{a.port}", f"127.0.0.4:{a.port}"}, eps
    assert {ep["origin"] for ep in eps.values()} == {f"move.test:{a.port}"}
    assert r.get("who") == b"a"
    r.close()
