"""Fixtures for the name-discovery tests: a real dnsmasq (its address set as
the process's DNS server with ``iokernel.configure``) and redis-servers on
127.0.0.2, 127.0.0.3 and 127.0.0.4, all on the same port, each holding its
own name under the key ``who``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import iokernel
from tests.servers.dns_server import DnsServer
from tests.servers.process import ServerError, free_port
from tests.servers.redis_server import RedisServer

ADDRS = {"a": "127.0.0.2", "b": "127.0.0.3", "c": "127.0.0.4"}


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    srv = DnsServer(
        hosts={"move.test": [ADDRS["a"]]},
        host_records=[("slow.test", ADDRS["a"], 5)],
    )
    try:
        srv.start()
    except ServerError as e:
        srv.stop(cleanup=True)
        pytest.fail(f"could not start dnsmasq for the tests: {e}", pytrace=False)
    iokernel.configure(dns_servers=[srv.address])
    try:
        yield srv
    finally:
        iokernel.configure(dns_servers=None)
        srv.stop(cleanup=True)


@pytest.fixture(scope="module")
def redis_trio() -> Iterator[dict[str, RedisServer]]:
    """redis-server on 127.0.0.2/.3/.4, one port; `who` names each."""
    port = free_port(ADDRS["a"])
    servers: dict[str, RedisServer] = {}
    try:
        for name, ip in ADDRS.items():
            s = RedisServer(host=ip, port=port)
            servers[name] = s
            s.start()
            s.command_raw("SET", "who", name)
    except ServerError as e:
        for s in servers.values():
            s.stop(cleanup=True)
        pytest.fail(f"could not start redis-server on 127.0.0.2-4: {e}", pytrace=False)
    yield servers
    for s in servers.values():
        s.stop(cleanup=True)


@pytest.fixture
def trio(redis_trio: dict[str, RedisServer]) -> dict[str, RedisServer]:
    """The three servers, all running, `who` set (a test may stop one)."""
    for name, s in redis_trio.items():
        if not s.running:
            s.restart()
        s.command_raw("SET", "who", name)
    return redis_trio
