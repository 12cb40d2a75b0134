"""What a client shows of its endpoints (`endpoints()`), waiting for them
(`wait_ready` / `await ready`), and the process-wide caps of
`iokernel.configure`, against real redis-servers on 127.0.0.2-4 and a real
PostgreSQL."""

from __future__ import annotations

import asyncio
import time

import pytest

import iokernel
from iokernel import pg, redis
from iokernel._configure import limits
from tests.faults.relay import Relay
from tests.integration.balance_util import addr, client, redis_trio, wait_for
from tests.servers import PostgresServer, RedisServer, dead_port


def test_endpoints_lists_each_endpoint_with_its_state_and_counters() -> None:
    with redis_trio() as servers:
        addrs = [addr(s) for s in servers]
        # The multi-host URL form: every host its own endpoint.
        c = redis.Client(f"redis://{','.join(addrs)}/0", client_name="endpoints-list")
        c.wait_ready(30)
        for i in range(30):
            c.set(f"k{i}", "v")
        eps = c.endpoints()
        print(f"\n{eps}")
        assert [e["address"] for e in eps] == addrs
        for e in eps:
            assert e["state"] == "up" and e["origin"] == e["address"] and e["role"] == "primary"  # HELLO said
            assert e["connections"] == 1 and e["in_flight"] == 0 and e["errors"] == 0
            assert e["last_error"] is None and e["latency_ms"] >= 0
        assert sum(e["requests"] for e in eps) >= 30
        assert sum(1 for e in eps if e["requests"] > 0) >= 2, "the balancer uses several"


def test_wait_ready_names_the_unreachable_endpoint_and_why() -> None:
    with redis_trio() as servers:
        dead = f"127.0.0.3:{dead_port('127.0.0.3')}"
        addrs = [addr(servers[0]), dead]
        c = client(servers[0].url(), addrs, cls=redis.Client)
        t0 = time.monotonic()
        with pytest.raises(iokernel.ConnectionError) as e:
            c.wait_ready(1.0)
        waited = time.monotonic() - t0
        msg = str(e.value)
        print(f"\nafter {waited:.2f} s: {msg}")
        assert dead in msg and "refused" in msg.lower() and "1 of 2" in msg
        assert addr(servers[0]) not in msg.split("not connected")[1], "only the one down"
        assert 1.0 <= waited < 10.0
        # Requests go to the endpoint that is up meanwhile.
        assert c.set("k", "v") is True
        c._svc._set_addresses([addr(servers[0])])
        c.wait_ready(10)


async def test_await_ready_returns_once_an_endpoint_comes_up_and_raises_while_down() -> None:
    with redis_trio() as servers:
        servers[2].stop()
        addrs = [addr(s) for s in servers]
        c = client(servers[0].url(), addrs)
        with pytest.raises(iokernel.ConnectionError) as e:
            await c.ready(0.5)
        named = str(e.value).split("not connected")[1]
        assert addrs[2] in named and addrs[0] not in named and addrs[1] not in named
        servers[2].start()
        t0 = time.monotonic()
        await c.ready(30)
        print(f"\nready {time.monotonic() - t0:.3f} s after the third server came back")
        assert [e["state"] for e in c.endpoints()] == ["up"] * 3


def test_pg_client_endpoints_and_wait_ready(pg_server: PostgresServer) -> None:
    db = pg.Client(pg_server.dsn(application_name="endpoints-test"))
    db.wait_ready(30)
    assert db.fetchval("SELECT 1") == 1
    (e,) = db.endpoints()
    assert e["address"] == f"{pg_server.host}:{pg_server.port}" and e["state"] == "up"
    assert e["requests"] >= 1 and e["errors"] == 0


def test_process_wide_max_in_flight_fails_fast_across_services(
        fresh_redis_server: RedisServer) -> None:
    srv = fresh_redis_server

    async def main() -> tuple[list[object], object]:
        a = redis.AsyncClient(srv.url(0), client_name="cap-a")
        b = redis.AsyncClient(srv.url(1), client_name="cap-b")
        await a.ready(30)
        await b.ready(30)
        srv.command_raw("CLIENT", "PAUSE", "10000", "WRITE")  # no write is answered meanwhile
        held = [asyncio.ensure_future(a.set("x", "1")) for _ in range(5)]
        held += [asyncio.ensure_future(b.set("x", "1")) for _ in range(5)]
        await asyncio.sleep(0)
        wait_for("ten requests out", lambda: limits()["in_flight"] >= 10, 10)
        over: object = None
        try:
            await b.get("y")
        except iokernel.OverloadedError as e:
            over = e
        srv.command_raw("CLIENT", "UNPAUSE")
        return list(await asyncio.gather(*held, return_exceptions=True)), over

    iokernel.configure(max_in_flight=10)
    try:
        results, over = asyncio.run(main())
    finally:
        iokernel.configure(max_in_flight=None)
    print(f"\n{over}")
    assert isinstance(over, iokernel.OverloadedError), over
    assert "max_in_flight=10" in str(over)
    assert results == [True] * 10, "the requests within the cap are answered"
    assert limits()["max_in_flight"] is None


def test_process_wide_max_queued_fails_fast(redis_server: RedisServer) -> None:
    # The relay holds the connection back 3 s: requests queue meanwhile.
    with Relay((redis_server.host, redis_server.port), delay=lambda i: 3.0) as r:
        c = redis.Client(f"redis://127.0.0.1:{r.port}/0", client_name="cap-q",
                         connect_timeout=20)

        async def main() -> tuple[list[object], object]:
            ac = redis.AsyncClient(f"redis://127.0.0.1:{r.port}/0", client_name="cap-q2",
                                   connect_timeout=20)
            queued = [asyncio.ensure_future(ac.ping()) for _ in range(3)]
            await asyncio.sleep(0)
            wait_for("three requests queued", lambda: limits()["queued"] >= 3, 10)
            over: object = None
            try:
                await ac.ping()
            except iokernel.OverloadedError as e:
                over = e
            return list(await asyncio.gather(*queued, return_exceptions=True)), over

        iokernel.configure(max_queued=3)
        try:
            results, over = asyncio.run(main())
        finally:
            iokernel.configure(max_queued=None)
        print(f"\n{over}")
        assert isinstance(over, iokernel.OverloadedError) and "max_queued=3" in str(over)
        assert results == [True] * 3
        c.close()


def test_configure_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="max_in_flight"):
        iokernel.configure(max_in_flight=0)
    with pytest.raises(TypeError, match="max_queued"):
        iokernel.configure(max_queued="10")
    with pytest.raises(TypeError):
        iokernel.configure(10)  # type: ignore[misc]
    assert limits()["max_in_flight"] is None and limits()["max_queued"] is None
