"""The TLS server name when the kernel resolves a host name itself
(discovery, a real dnsmasq): the certificate is checked against the name in
the URL, not against the IP address it resolved to. The certificate used is
valid for db.example.com only (no IP SAN), which dnsmasq maps to 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import iokernel
from iokernel import pg, redis
from tests.servers.dns_server import DnsServer
from tests.tls.certs import Certs
from tests.tls.servers import PgTlsServer, RedisTlsServer

NAME = "db.example.com"


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    srv = DnsServer(hosts={NAME: ["127.0.0.1"]})
    srv.start()
    iokernel.configure(dns_servers=[srv.address])
    try:
        yield srv
    finally:
        iokernel.configure(dns_servers=None)
        srv.stop(cleanup=True)


def test_redis_name_resolved_by_the_kernel(dns: DnsServer, redis_tls: Callable[..., RedisTlsServer],
                                           certs: Certs) -> None:
    s = redis_tls("wrong_host")  # valid for db.example.com only
    c = redis.Client(f"rediss://{NAME}:{s.tls_port}/0", ssl_ca_certs=certs.ca, timeout=10.0)
    try:
        assert c.ping() is True
    finally:
        c.close()
    assert dns.query_count(NAME) >= 1
    # by IP address the same certificate does not fit
    e = redis.Client(f"rediss://127.0.0.1:{s.tls_port}/0", ssl_ca_certs=certs.ca)
    with pytest.raises(iokernel.TLSError) as ei:
        e.ping()
    assert ei.value.tls_reason == "hostname_mismatch"
    e.close()


def test_pg_name_resolved_by_the_kernel(dns: DnsServer, pg_tls_wrong_host: PgTlsServer,
                                        certs: Certs) -> None:
    dsn = pg_tls_wrong_host.dsn(sslmode="verify-full", sslrootcert=certs.ca).replace(
        "127.0.0.1", NAME)
    db = pg.Client(dsn, timeout=10.0)
    try:
        assert db.fetchval("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()") is True
    finally:
        db.close()
