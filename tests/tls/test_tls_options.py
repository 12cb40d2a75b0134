"""The TLS options users write beyond the basic ones, against real servers:
redis-py's ``ssl_password`` (an encrypted client key), ``ssl_ca_path`` (a
directory of CAs) and ``ssl_ciphers``; libpq's ``sslpassword``, ``sslcrl`` /
``sslcrldir`` (revocation lists) and ``sslcertmode``. What cannot be
supported is refused with an error naming the option, never ignored."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import iokernel
from iokernel import pg, redis
from tests.tls.certs import CLIENT_USER, KEY_PASSWORD, Certs
from tests.tls.servers import PgTlsServer, RedisTlsServer, pg_outcome


def ping(url: str, **kw: Any) -> bool | iokernel.Error:
    c = redis.Client(url, timeout=10.0, connect_timeout=5.0, **kw)
    try:
        return c.ping()
    except iokernel.Error as e:
        return e
    finally:
        c.close()


# ------------------------------------------------------------- redis-py
def test_ssl_password_decrypts_the_client_key(redis_tls: Callable[..., RedisTlsServer],
                                              certs: Certs) -> None:
    s = redis_tls(clients="yes")  # mutual TLS required
    mtls = {"ssl_ca_certs": certs.ca, "ssl_certfile": certs.client.cert}
    assert ping(s.tls_url(), ssl_keyfile=certs.client_key_encrypted,
                ssl_password=KEY_PASSWORD, **mtls) is True
    assert ping(s.tls_url(query=f"ssl_password={KEY_PASSWORD}"),
                ssl_keyfile=certs.client_key_encrypted, **mtls) is True
    assert ping(s.tls_url(), ssl_keyfile=certs.client_key_encrypted,
                ssl_password=KEY_PASSWORD.encode(), **mtls) is True
    with pytest.raises(ValueError, match="encrypted; give its password with ssl_password"):
        redis.Client(s.tls_url(), ssl_keyfile=certs.client_key_encrypted, **mtls)
    with pytest.raises(ValueError, match=r"could not be decrypted.*wrong ssl_password"):
        redis.Client(s.tls_url(), ssl_keyfile=certs.client_key_encrypted,
                     ssl_password="not-it", **mtls)
    with pytest.raises(ValueError, match=r"traditional format.*openssl pkcs8 -topk8"):
        redis.Client(s.tls_url(), ssl_keyfile=certs.client_key_traditional,
                     ssl_password=KEY_PASSWORD, **mtls)


@pytest.fixture
def ca_dir(tmp_path: Path, certs: Certs) -> Iterator[Callable[[str], str]]:
    def make(which: str) -> str:
        d = tmp_path / which
        d.mkdir(exist_ok=True)
        (d / "README").write_text("not a certificate\n")  # skipped, as OpenSSL does
        if which != "empty":
            shutil.copy(getattr(certs, which), d / "3e1f2a7c.0")
        return str(d)

    yield make


def test_ssl_ca_path(redis_tls: Callable[..., RedisTlsServer], certs: Certs,
                     ca_dir: Callable[[str], str]) -> None:
    s = redis_tls()
    assert ping(s.tls_url(), ssl_ca_path=ca_dir("ca")) is True
    got = ping(s.tls_url(), ssl_ca_path=ca_dir("other_ca"))
    assert isinstance(got, iokernel.TLSError) and got.tls_reason == "unknown_ca", got
    # with ssl_ca_certs and ssl_ca_data, all count (as in redis-py)
    pem = Path(certs.ca).read_text()
    assert ping(s.tls_url(), ssl_ca_path=ca_dir("other_ca"), ssl_ca_data=pem) is True
    assert ping(s.tls_url(), ssl_ca_certs=certs.other_ca, ssl_ca_data=pem) is True
    with pytest.raises(ValueError, match=r"ssl_ca_path .*no PEM certificate"):
        redis.Client(s.tls_url(), ssl_ca_path=ca_dir("empty"))
    with pytest.raises(ValueError, match=r"ssl_ca_path .*no such directory"):
        redis.Client(s.tls_url(), ssl_ca_path=certs.ca)


def test_ssl_ciphers(redis_tls: Callable[..., RedisTlsServer], certs: Certs) -> None:
    # the server speaks TLS 1.2 only, with one suite
    s = redis_tls(extra=('tls-protocols "TLSv1.2"',
                         "tls-ciphers ECDHE-ECDSA-AES256-GCM-SHA384"))
    ca = {"ssl_ca_certs": certs.ca}
    assert ping(s.tls_url(), **ca) is True
    assert ping(s.tls_url(), ssl_ciphers="ECDHE-ECDSA-AES256-GCM-SHA384", **ca) is True
    assert ping(s.tls_url(query="ssl_ciphers=TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"),
                **ca) is True
    # a list without the server's suite: no TLS 1.2 suite in common
    got = ping(s.tls_url(), ssl_ciphers="ECDHE-ECDSA-AES128-GCM-SHA256:"
               "ECDHE-ECDSA-CHACHA20-POLY1305", **ca)
    assert isinstance(got, iokernel.TLSError), got
    for bad in ("HIGH:!aNULL", "AES128-SHA", "DEFAULT"):
        with pytest.raises(ValueError, match=r"ssl_ciphers: .* is not supported"):
            redis.Client(s.tls_url(), ssl_ciphers=bad, **ca)


# ---------------------------------------------------------------- libpq
def test_sslpassword(pg_tls: PgTlsServer, certs: Certs) -> None:
    dsn = pg_tls.dsn(user=CLIENT_USER, sslmode="verify-full", sslrootcert=certs.ca,
                     sslcert=certs.client.cert, sslkey=certs.client_key_encrypted)
    db = pg.Client(dsn, sslpassword=KEY_PASSWORD)
    try:
        assert db.fetchval("SELECT current_user") == CLIENT_USER
    finally:
        db.close()
    assert pg_outcome(dsn + f"&sslpassword={KEY_PASSWORD}") == "tls"
    with pytest.raises(ValueError, match="give its password with sslpassword"):
        pg.Client(dsn)


@pytest.fixture(scope="module")
def pg_revoked(certs: Certs) -> Iterator[PgTlsServer]:
    with PgTlsServer(certs, certs.revoked) as srv:
        yield srv


def test_sslcrl_and_sslcrldir(pg_revoked: PgTlsServer, pg_tls: PgTlsServer, certs: Certs,
                              tmp_path: Path) -> None:
    crl_dir = tmp_path / "crls"
    crl_dir.mkdir()
    shutil.copy(certs.crl, crl_dir / "3e1f2a7c.r0")
    verify = {"sslmode": "verify-full", "sslrootcert": certs.ca}
    # without the list the revoked certificate is not known to be revoked
    assert pg_outcome(pg_revoked.dsn(**verify, application_name="crl0")) == "tls"
    for given in ({"sslcrl": certs.crl}, {"sslcrldir": str(crl_dir)}):
        got = pg_outcome(pg_revoked.dsn(**verify, **given))
        assert isinstance(got, iokernel.TLSError) and got.tls_reason == "revoked", got
        assert "sslcrl" in str(got)
        # a certificate not on the list passes
        assert pg_outcome(pg_tls.dsn(**verify, **given)) == "tls"
    # keyword form; and only read to verify: require (no root) checks nothing
    got = pg_outcome(pg_revoked.dsn(**verify, application_name="crl-kw"), sslcrl=certs.crl)
    assert isinstance(got, iokernel.TLSError) and got.tls_reason == "revoked", got
    assert pg_outcome(pg_revoked.dsn(sslmode="require", sslcrl=certs.crl)) == "tls"
    with pytest.raises(ValueError, match=r"sslcrl .*no revocation list"):
        pg.Client(pg_tls.dsn(**verify, sslcrl=certs.ca))
    with pytest.raises(ValueError, match=r"sslcrldir .*no such directory"):
        pg.Client(pg_tls.dsn(**verify, sslcrldir=str(tmp_path / "none")))


def test_sslcertmode(pg_tls: PgTlsServer, certs: Certs) -> None:
    dsn = pg_tls.dsn(user=CLIENT_USER, sslmode="verify-full", sslrootcert=certs.ca,
                     sslcert=certs.client.cert, sslkey=certs.client.key)
    assert pg_outcome(dsn + "&sslcertmode=allow") == "tls"
    # disable: the certificate is not sent, so cert authentication fails
    got = pg_outcome(dsn, sslcertmode="disable")
    assert isinstance(got, iokernel.TLSError) and got.tls_reason == "client_cert_refused", got
    with pytest.raises(ValueError, match="sslcertmode=require is not supported"):
        pg.Client(dsn + "&sslcertmode=require")
    with pytest.raises(ValueError, match="sslcertmode must be"):
        pg.Client(dsn, sslcertmode="sometimes")
