"""PostgreSQL over TLS against a server with ssl=on (certificates made at
set-up) and the usual one with TLS off: libpq's sslmode table, sslrootcert
(file, system), client-certificate authentication, sslnegotiation, cancel
over TLS, the environment (PGSSLMODE ...), asyncpg's ssl= form, and the
documented error for each failure (iokernel.TLSError with .tls_reason)."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.servers import PostgresServer
from tests.tls.certs import CLIENT_USER, Certs
from tests.tls.servers import IS_TLS, TLS_ONLY_USER, PgTlsServer
from tests.tls.servers import pg_outcome as outcome

# libpq's table: sslmode x server (TLS on / off) -> what happens. With
# sslrootcert given (the test CA) so that verify-ca/verify-full can verify.
SSLMODE_TABLE = [
    ("disable", "plain", "plain"),
    ("allow", "plain", "plain"),
    ("prefer", "tls", "plain"),
    ("require", "tls", "not_supported"),
    ("verify-ca", "tls", "not_supported"),
    ("verify-full", "tls", "not_supported"),
]


@pytest.mark.parametrize(("mode", "on", "off"), SSLMODE_TABLE)
def test_sslmode_table(pg_tls: PgTlsServer, pg_server: PostgresServer, certs: Certs,
                       mode: str, on: str, off: str) -> None:
    for srv, want in ((pg_tls, on), (pg_server, off)):
        got = outcome(srv.dsn(sslmode=mode, sslrootcert=certs.ca))
        if want in ("tls", "plain"):
            assert got == want, f"sslmode={mode}: {got}"
        else:
            assert isinstance(got, iokernel.TLSError), f"sslmode={mode}: {got}"
            assert got.tls_reason == want
            assert "sslmode" in str(got) and str(srv.port) in str(got), got


def test_default_is_prefer(pg_tls: PgTlsServer, pg_server: PostgresServer) -> None:
    assert outcome(pg_tls.dsn()) == "tls"
    assert outcome(pg_server.dsn()) == "plain"


def test_allow_and_prefer_retry_as_libpq(pg_tls: PgTlsServer, certs: Certs) -> None:
    # tlsonly may only log in over TLS (hostssl; plain text is rejected):
    # allow tries plain text first, is refused, and retries with TLS
    assert outcome(pg_tls.dsn(user=TLS_ONLY_USER, sslmode="allow")) == "tls"
    assert outcome(pg_tls.dsn(user=TLS_ONLY_USER, sslmode="prefer")) == "tls"
    got = outcome(pg_tls.dsn(user=TLS_ONLY_USER, sslmode="disable"))
    assert isinstance(got, iokernel.ConnectionError) and "no encryption" in str(got), got


def test_require_with_root_certificate_is_verify_ca(
        pg_tls: PgTlsServer, pg_tls_wrong_host: PgTlsServer, certs: Certs) -> None:
    assert outcome(pg_tls.dsn(sslmode="require")) == "tls"  # no root: no check
    got = outcome(pg_tls.dsn(sslmode="require", sslrootcert=certs.other_ca))
    assert isinstance(got, iokernel.TLSError) and got.tls_reason == "unknown_ca", got
    assert "sslrootcert" in str(got)
    # verify-ca, not verify-full: another host name is fine
    assert outcome(pg_tls_wrong_host.dsn(sslmode="require", sslrootcert=certs.ca)) == "tls"


def test_verify_ca_vs_verify_full(pg_tls_wrong_host: PgTlsServer, certs: Certs) -> None:
    srv = pg_tls_wrong_host
    assert outcome(srv.dsn(sslmode="verify-ca", sslrootcert=certs.ca)) == "tls"
    got = outcome(srv.dsn(sslmode="verify-full", sslrootcert=certs.ca))
    assert isinstance(got, iokernel.TLSError) and got.tls_reason == "hostname_mismatch", got
    assert "sslmode=verify-ca" in str(got)


def test_unknown_ca_and_system_roots(pg_tls: PgTlsServer, certs: Certs) -> None:
    got = outcome(pg_tls.dsn(sslmode="verify-full", sslrootcert=certs.other_ca))
    assert isinstance(got, iokernel.TLSError) and got.tls_reason == "unknown_ca", got
    # the system's CAs do not include the test CA
    got = outcome(pg_tls.dsn(sslrootcert="system"))
    assert isinstance(got, iokernel.TLSError) and got.tls_reason == "unknown_ca", got
    with pytest.raises(ValueError, match="verify-full"):
        pg.Client(pg_tls.dsn(sslrootcert="system", sslmode="require"))


def test_verify_needs_a_root_certificate(pg_tls: PgTlsServer,
                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt
    with pytest.raises(ValueError, match="sslrootcert"):
        pg.Client(pg_tls.dsn(sslmode="verify-full", application_name="noroot"))


def test_expired(certs: Certs) -> None:
    with PgTlsServer(certs, certs.expired) as srv:
        got = outcome(srv.dsn(sslmode="verify-full", sslrootcert=certs.ca))
        assert isinstance(got, iokernel.TLSError) and got.tls_reason == "expired", got
        assert "sslmode=require" in str(got)
        assert outcome(srv.dsn(sslmode="require")) == "tls"


def test_client_certificate_authentication(pg_tls: PgTlsServer, certs: Certs) -> None:
    ok = pg.Client(pg_tls.dsn(user=CLIENT_USER, sslmode="verify-full"), sslrootcert=certs.ca,
                   sslcert=certs.client.cert, sslkey=certs.client.key)
    assert ok.fetchval("SELECT current_user") == CLIENT_USER
    assert ok.fetchval(IS_TLS) is True
    ok.close()
    for kw in ({}, {"sslcert": certs.client_untrusted.cert,
                    "sslkey": certs.client_untrusted.key}):
        got = outcome(pg_tls.dsn(user=CLIENT_USER, sslmode="verify-full",
                                 sslrootcert=certs.ca), **kw)
        assert isinstance(got, iokernel.TLSError), got
        assert got.tls_reason == "client_cert_refused", got
        assert "sslcert" in str(got), got


def test_keywords_env_and_asyncpg_form(pg_tls: PgTlsServer, pg_server: PostgresServer,
                                       certs: Certs, monkeypatch: pytest.MonkeyPatch) -> None:
    # keyword arguments win over the URL, the URL over the environment
    monkeypatch.setenv("PGSSLMODE", "require")
    got = outcome(pg_server.dsn(application_name="env1"))
    assert isinstance(got, iokernel.TLSError) and got.tls_reason == "not_supported", got
    assert outcome(pg_server.dsn(sslmode="prefer", application_name="env2")) == "plain"
    assert outcome(pg_server.dsn(sslmode="require", application_name="env3"),
                   sslmode="disable") == "plain"
    monkeypatch.setenv("PGSSLMODE", "verify-full")
    monkeypatch.setenv("PGSSLROOTCERT", certs.ca)
    assert outcome(pg_tls.dsn(application_name="env4")) == "tls"
    monkeypatch.delenv("PGSSLMODE")
    monkeypatch.delenv("PGSSLROOTCERT")
    # asyncpg's ssl=
    assert outcome(pg_tls.dsn(application_name="a1"), ssl="verify-full",
                   sslrootcert=certs.ca) == "tls"
    assert outcome(pg_tls.dsn(application_name="a2"), ssl=False) == "plain"
    assert outcome(pg_tls.dsn(application_name="a3"), ssl=True, sslrootcert=certs.ca) == "tls"
    with pytest.raises(TypeError, match="sslmode="):
        pg.Client(pg_tls.dsn(), ssl=ssl.create_default_context())
    with pytest.raises(ValueError, match="sslmode"):
        pg.Client(pg_tls.dsn(sslmode="verify_full"))


def test_direct_negotiation(pg_tls: PgTlsServer, certs: Certs) -> None:
    """sslnegotiation=direct (PostgreSQL 17's TLS without SSLRequest, ALPN
    "postgresql"). The server here is older and takes the TLS hello for a
    startup packet: the connection fails as a TLS error, never in plain text."""
    with pytest.raises(ValueError, match="require"):
        pg.Client(pg_tls.dsn(sslnegotiation="direct"))  # default prefer
    got = outcome(pg_tls.dsn(sslmode="verify-full", sslrootcert=certs.ca,
                             sslnegotiation="direct"))
    assert isinstance(got, iokernel.TLSError), got
    assert got.tls_reason in ("closed", "not_supported"), got


def test_cancel_goes_over_tls(pg_tls: PgTlsServer, certs: Certs) -> None:
    db = pg.Client(pg_tls.dsn(sslmode="verify-full", sslrootcert=certs.ca,
                              application_name="tls-cancel"), timeout=20.0, connections=1)
    assert db.fetchval("SELECT 1") == 1
    before = db._svc.stats()["tls_handshakes"]
    with pytest.raises(iokernel.TimeoutError):
        db.fetchval("SELECT pg_sleep(60)", timeout=0.5)
    # the kernel cancels it on the server (over a new TLS connection), so
    # the next query on the same connection is answered: without the cancel
    # it would wait behind the 60 s sleep and time out after 20 s
    assert db.fetchval("SELECT 2") == 2
    assert db._svc.stats()["tls_handshakes"] == before + 1
    db.close()


async def test_async_client_over_tls(pg_tls: PgTlsServer, certs: Certs) -> None:
    import asyncio

    db = pg.AsyncClient(pg_tls.dsn(sslmode="verify-full", sslrootcert=certs.ca), timeout=20.0)
    try:
        got = await asyncio.gather(*(db.fetchval("SELECT $1::int * 2", i) for i in range(300)))
        assert got == [i * 2 for i in range(300)]
        big = await db.fetchval("SELECT repeat('x', 1000000)")
        assert big == "x" * 1_000_000
    finally:
        await db.close()
