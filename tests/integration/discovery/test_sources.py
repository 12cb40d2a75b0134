"""The other sources of endpoints, against real servers: a set published
from Python (new requests follow within 10 ms), several hosts in one URL,
SRV records from dnsmasq, a watched file; and the settings' checks."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

import iokernel
from iokernel import discovery, redis
from tests.integration.discovery.conftest import ADDRS
from tests.integration.discovery.load import Load, until
from tests.servers.dns_server import DnsServer
from tests.servers.process import ServerError
from tests.servers.redis_server import RedisServer


def ep(s: RedisServer) -> str:
    return f"{s.host}:{s.port}"


async def test_publish_routes_new_requests_within_10_ms(trio: dict[str, RedisServer]) -> None:
    a, b = trio["a"], trio["b"]
    src = discovery.Source(f"orders-{uuid.uuid4().hex[:8]}")
    src.publish([ep(a), ep(b)])
    r = redis.AsyncClient(f"redis+discovery://{src.name}/0")
    took = []
    async with Load(r, tasks=10) as load:
        for _ in range(5):
            for only in ("a", "b"):
                src.publish([ep(a), ep(b)])
                both = time.monotonic()
                await until(lambda t=both: all(
                    load.counts(t).get(k, 0) > 20 for k in ("a", "b")), 30, "traffic on both")
                t0 = time.monotonic()
                src.publish([ep(trio[only])])
                await until(lambda t=t0, w=only: load.settled_at(t, w) is not None
                            and len(load.started_after(t)) > 200, 30, f"traffic only on {only}")
                settled = load.settled_at(t0, only)
                assert settled is not None
                took.append(settled - t0)
    ms = sorted(round(t * 1000, 2) for t in took)
    print(f"\npublish() to all new requests on the new set, 10 runs (ms): {ms}; "
          f"median {statistics.median(ms):.2f} ms; {len(load.errors)} failed of {len(load.done)}")
    assert not load.errors, load.errors[:3]
    # The bound, on the median so one descheduled run on a loaded
    # machine does not decide it.
    assert statistics.median(took) <= 0.010, ms
    await r.close()


async def test_before_the_first_publish_requests_fail_typed(trio: dict[str, RedisServer]) -> None:
    src = discovery.Source(f"empty-{uuid.uuid4().hex[:8]}")
    r = redis.AsyncClient(f"redis+discovery://{src.name}/0")
    with pytest.raises(iokernel.ConnectionError, match="no endpoint"):
        await r.get("who")
    src.publish([ep(trio["c"])])
    for _ in range(500):
        try:
            assert await r.get("who") == b"c"
            break
        except iokernel.ConnectionError:
            await asyncio.sleep(0.01)
    else:
        raise AssertionError("the published endpoint never took a request")
    await r.close()


def test_publish_rejects_bad_entries_and_publishes_nothing() -> None:
    src = discovery.Source(f"bad-{uuid.uuid4().hex[:8]}")
    src.publish(["10.0.0.1:1"])
    for bad, err in [(["10.0.0.1"], ValueError), (["h:0"], ValueError),
                     ([("h:1", -1)], ValueError), ([3], TypeError), ("h:1", TypeError),
                     (5, TypeError), (None, TypeError)]:
        with pytest.raises(err, match=r"nothing was published|one string"):
            src.publish(bad)  # type: ignore[arg-type]
    assert src.current() == [("10.0.0.1:1", 1)]
    src.publish({"10.0.0.2:2": 3, "[::1]:4": 0})
    assert src.current() == [("10.0.0.2:2", 3), ("[::1]:4", 0)]
    for name in ["", "a/b", "a:b"]:
        with pytest.raises(ValueError):
            discovery.Source(name)


async def test_several_hosts_in_one_url_all_take_traffic(
    dns: DnsServer, trio: dict[str, RedisServer]
) -> None:
    a = trio["a"]
    # One followed name and one address.
    r = redis.AsyncClient(f"redis://move.test:{a.port},{ADDRS['b']}:{a.port}/0")
    async with Load(r, tasks=20) as load:
        await until(lambda: all(load.counts().get(k, 0) > 50 for k in "ab"), 30, "a and b")
    print(f"\nredis://move.test,127.0.0.3: {load.counts()}")
    assert not load.errors
    await r.close()


async def test_srv_records_give_hosts_and_ports(trio: dict[str, RedisServer]) -> None:
    a = trio["a"]
    srv = DnsServer(
        hosts={"a.test": [ADDRS["a"]], "c.test": [ADDRS["c"]]},
        srv_records=[("_redis._tcp.svc.test", "a.test", a.port, 0, 1),
                     ("_redis._tcp.svc.test", "c.test", a.port, 0, 1),
                     ("_redis._tcp.svc.test", "a.test", 1, 10, 1)],  # a backup: not used
    )
    try:
        srv.start()
    except ServerError as e:
        srv.stop(cleanup=True)
        pytest.fail(f"could not start dnsmasq: {e}", pytrace=False)
    iokernel.configure(dns_servers=[srv.address])
    try:
        r = redis.AsyncClient("redis+srv://_redis._tcp.svc.test/0")
        async with Load(r, tasks=20) as load:
            await until(lambda: all(load.counts().get(k, 0) > 50 for k in "ac"), 30, "a and c")
        print(f"\nredis+srv://_redis._tcp.svc.test: {load.counts()}")
        assert not load.errors, load.errors[:3]
        await r.close()
    finally:
        iokernel.configure(dns_servers=None)
        srv.stop(cleanup=True)


async def test_a_watched_file_is_followed(tmp_path: Path, trio: dict[str, RedisServer]) -> None:
    a, b, c = trio["a"], trio["b"], trio["c"]
    f = tmp_path / "redis.hosts"
    f.write_text(f"# the pool\n{ep(a)}\n")
    r = redis.AsyncClient(f"redis+file://{quote(str(f), safe='')}/0")
    async with Load(r, tasks=20) as load:
        await until(lambda: load.counts().get("a", 0) > 50, 30, "traffic on a")
        tmp = tmp_path / "redis.hosts.new"
        tmp.write_text(f'[{{"address": "{ep(b)}", "weight": 1}}, "{ep(c)}"]')
        os.replace(tmp, f)
        t0 = time.monotonic()
        took = await until(lambda: all(load.counts(t0).get(k, 0) > 50 for k in "bc")
                           and load.settled_at(t0, "a") is None, 30, "traffic on b and c")
        # A broken file keeps the set.
        tmp.write_text("garbage\n")
        os.replace(tmp, f)
        # Nor does an empty one (an in-place rewrite is seen empty at first).
        f.write_text("")
        await asyncio.sleep(0.5)
        t1 = time.monotonic()
        await asyncio.sleep(0.5)
    print(f"\nfile rewritten: new set took traffic within {took * 1000:.0f} ms; "
          f"after a broken write: {load.counts(t1)}")
    assert not load.errors, load.errors[:3]
    assert set(load.counts(t1)) == {"b", "c"}
    await r.close()


def test_configure_checks_its_input() -> None:
    for bad in (["dns.example"], ["1.2.3.4:99999"], []):
        with pytest.raises(ValueError, match="dns_servers"):
            iokernel.configure(dns_servers=bad)
    with pytest.raises(ValueError, match="dns_max_ttl"):
        iokernel.configure(dns_max_ttl=0.5)
    now = iokernel.configure(dns_max_ttl=30)
    assert now == {"dns_servers": None, "dns_max_ttl": 30.0, "max_in_flight": None, "max_queued": None,
                   "loop_batching": True}
    assert iokernel.configure(dns_max_ttl=60)["dns_max_ttl"] == 60.0


def test_the_environment_names_the_dns_servers(dns: DnsServer, trio: dict[str, RedisServer]) -> None:
    code = (
        "from iokernel import redis\n"
        f"r = redis.Client('redis://move.test:{trio['a'].port}/0')\n"
        "print(r.get('who').decode())\n"
    )
    env = dict(os.environ, IOKERNEL_DNS_SERVERS=dns.address)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "a", out.stderr
    env["IOKERNEL_DNS_SERVERS"] = "not-an-ip"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=60)
    assert out.returncode != 0 and "IOKERNEL_DNS_SERVERS" in out.stderr, out.stderr
