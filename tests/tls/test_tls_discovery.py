"""Which name a server's certificate is checked against when the endpoint
came from discovery (a real dnsmasq): an SRV target's address against the
SRV target's name; each host of a multi-host URL against its own name
(two names on the same port, resolved to 127.0.0.1 and 127.0.0.2); an
address given as an IP literal (as Sentinel or `_set_addresses` give them)
against the certificate's IP SANs, never against a host name of the URL
(redis-py#3629)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import iokernel
from iokernel import pg, redis
from tests.servers.dns_server import DnsServer
from tests.tls.certs import NAME, NAME2, Certs
from tests.tls.servers import PgTlsServer, RedisTlsServer

SRV_REDIS = "_redis._tcp.example.com"
SRV_PG = "_pg._tcp.example.com"


@pytest.fixture
def dns_for() -> Iterator[Callable[..., DnsServer]]:
    made: list[DnsServer] = []

    def start(hosts: dict[str, list[str]],
              srv: tuple[tuple[str, str, int, int, int], ...] = ()) -> DnsServer:
        d = DnsServer(hosts=hosts, srv_records=srv)
        d.start()
        made.append(d)
        iokernel.configure(dns_servers=[d.address])
        return d

    try:
        yield start
    finally:
        iokernel.configure(dns_servers=None)
        for d in made:
            d.stop(cleanup=True)


def test_redis_srv_target_is_the_name_checked(dns_for: Callable[..., DnsServer],
                                              redis_tls: Callable[..., RedisTlsServer],
                                              certs: Certs) -> None:
    s = redis_tls("wrong_host")  # valid for db.example.com only, no IP SAN
    dns = dns_for({NAME: ["127.0.0.1"]}, ((SRV_REDIS, NAME, s.tls_port, 0, 1),))
    c = redis.Client(f"redis+srv://{SRV_REDIS}/0", ssl=True, ssl_ca_certs=certs.ca,
                     timeout=10.0)
    try:
        assert c.ping() is True
        (ep,) = c.endpoints()
        assert ep["address"] == f"127.0.0.1:{s.tls_port}"  # connected by address
    finally:
        c.close()
    assert dns.query_count(SRV_REDIS, "SRV") >= 1


def test_pg_srv_target_is_the_name_checked(dns_for: Callable[..., DnsServer],
                                           pg_tls_wrong_host: PgTlsServer, certs: Certs) -> None:
    srv = pg_tls_wrong_host
    dns_for({NAME: ["127.0.0.1"]}, ((SRV_PG, NAME, srv.port, 0, 1),))
    dsn = srv.dsn(sslmode="verify-full", sslrootcert=certs.ca).replace(
        "postgresql://", "postgresql+srv://").replace(f"127.0.0.1:{srv.port}", SRV_PG)
    db = pg.Client(dsn, timeout=10.0)
    try:
        assert db.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    finally:
        db.close()


def test_each_host_of_a_multi_host_url_by_its_own_name(
        dns_for: Callable[..., DnsServer], redis_tls: Callable[..., RedisTlsServer],
        certs: Certs) -> None:
    # one server on 127.0.0.1 and 127.0.0.2, a certificate for both names
    # and no IP address; each name resolves to one of the two addresses
    s = redis_tls("two_names", extra=("bind 127.0.0.1 127.0.0.2",))
    dns_for({NAME: ["127.0.0.1"], NAME2: ["127.0.0.2"]})
    p = s.tls_port
    c = redis.Client(f"rediss://{NAME}:{p},{NAME2}:{p}/0", ssl_ca_certs=certs.ca, timeout=10.0)
    try:
        c.wait_ready(30)
        eps = c.endpoints()
        assert sorted(e["address"] for e in eps) == [f"127.0.0.1:{p}", f"127.0.0.2:{p}"]
        assert all(e["state"] == "up" for e in eps), eps
    finally:
        c.close()


def test_an_ip_address_is_checked_against_ip_sans(
        dns_for: Callable[..., DnsServer], redis_tls: Callable[..., RedisTlsServer],
        certs: Certs) -> None:
    """As Sentinel gives a master's address: an IP literal. The URL names a
    host on the same port (resolved elsewhere); the IP endpoint is still
    checked as an IP address."""
    dns_for({NAME: ["127.0.0.2"]})  # nothing listens there
    for pair, want in (("server", None), ("wrong_host", "hostname_mismatch")):
        s = redis_tls(pair)
        c = redis.Client(f"rediss://{NAME}:{s.tls_port}/0", ssl_ca_certs=certs.ca,
                         timeout=10.0, connect_timeout=5.0)
        try:
            c._svc._set_addresses([f"127.0.0.1:{s.tls_port}"])
            if want is None:
                # the certificate has IP:127.0.0.1
                assert c.ping() is True
            else:
                # only DNS:db.example.com, which is not what was connected to
                with pytest.raises(iokernel.TLSError) as e:
                    c.ping()
                assert e.value.tls_reason == want, e.value
                assert "127.0.0.1" in str(e.value)
        finally:
            c.close()
