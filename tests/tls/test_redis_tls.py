"""Redis over TLS against redis-server --tls-port with certificates made at
set-up: redis-py's option names (keywords and URL parameters), every
verification outcome with its documented error (iokernel.TLSError with
.tls_reason, naming the option that changes it), mutual TLS, misbehaving
peers, and session resumption across reconnects."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

import iokernel
from iokernel import redis
from tests.tls.certs import Certs
from tests.tls.servers import FakePeer, RedisTlsServer

Server = Callable[..., RedisTlsServer]


def roundtrip(url: str, **kw: Any) -> iokernel.TLSError | redis.Client:
    """A client that did SET/GET over TLS, or the TLSError it raised."""
    c = redis.Client(url, connect_timeout=5.0, timeout=5.0, **kw)
    try:
        c.set("k", "v")
        assert c.get("k") == b"v"
        assert c._svc.stats()["tls_handshakes"] >= 1
        return c
    except iokernel.TLSError as e:
        c.close()
        return e


def fails(reason: str, option: str, url: str, **kw: Any) -> None:
    e = roundtrip(url, **kw)
    assert isinstance(e, iokernel.TLSError), f"expected a TLS failure ({reason}), it worked"
    assert e.tls_reason == reason, e
    assert isinstance(e, iokernel.ConnectionError) and e.reason == "connect_failed"
    assert option in str(e) and url.split("/")[2] in str(e), e


def works(url: str, **kw: Any) -> None:
    c = roundtrip(url, **kw)
    assert isinstance(c, redis.Client), c
    c.close()


def test_ca_file_data_and_url_params(redis_tls: Server, certs: Certs) -> None:
    s = redis_tls()
    works(s.tls_url(), ssl_ca_certs=certs.ca)
    works(s.tls_url(), ssl_ca_certs=Path(certs.ca))
    works(s.tls_url(), ssl_ca_data=Path(certs.ca).read_text())
    works(s.tls_url(), ssl_ca_data=Path(certs.ca).read_bytes())
    works(s.tls_url(query=f"ssl_ca_certs={quote(certs.ca, safe='')}&ssl_cert_reqs=required"))
    # by name as well as by IP (the certificate has both as SANs)
    works(s.tls_url(host="localhost"), ssl_ca_certs=certs.ca)
    # redis:// with ssl=True is TLS too
    works(f"redis://127.0.0.1:{s.tls_port}/0", ssl=True, ssl_ca_certs=certs.ca)
    works(s.tls_url(), ssl_ca_certs=certs.ca, ssl_min_version=ssl.TLSVersion.TLSv1_3)
    works(s.tls_url(), ssl_ca_certs=certs.ca, ssl_min_version="TLSv1_2")


def test_unknown_ca(redis_tls: Server, certs: Certs) -> None:
    s = redis_tls()
    # the system's store (or Mozilla's roots) does not know the test CA
    fails("unknown_ca", "ssl_ca_certs", s.tls_url())
    # the wrong CA given
    fails("unknown_ca", "ssl_ca_certs", s.tls_url(), ssl_ca_certs=certs.other_ca)
    # a server certificate from another CA, host name check off: still refused
    u = redis_tls("untrusted")
    fails("unknown_ca", "ssl_cert_reqs='none'", u.tls_url(), ssl_ca_certs=certs.ca,
          ssl_check_hostname=False)
    # a keyword argument wins over the URL's parameter
    works(s.tls_url(query="ssl_ca_certs=%2Fnonexistent"), ssl_ca_certs=certs.ca)


def test_expired(redis_tls: Server, certs: Certs) -> None:
    s = redis_tls("expired")
    fails("expired", "ssl_cert_reqs='none'", s.tls_url(), ssl_ca_certs=certs.ca)
    works(s.tls_url(), ssl_ca_certs=certs.ca, ssl_cert_reqs="none")


# ssl_cert_reqs x ssl_check_hostname against a certificate for another host
# (signed by the trusted CA): None = not given.
CERT_REQS_X_HOSTNAME = [
    ("required", None, "hostname_mismatch"),
    ("required", True, "hostname_mismatch"),
    ("required", False, "ok"),
    ("optional", None, "hostname_mismatch"),
    ("optional", False, "ok"),
    (ssl.CERT_REQUIRED, False, "ok"),
    (ssl.CERT_REQUIRED, True, "hostname_mismatch"),
    ("none", None, "ok"),
    ("none", False, "ok"),
    (ssl.CERT_NONE, None, "ok"),
    ("none", True, "ValueError"),
    (None, None, "hostname_mismatch"),
    (None, False, "ok"),
]


@pytest.mark.parametrize(("cert_reqs", "check_hostname", "outcome"), CERT_REQS_X_HOSTNAME)
def test_cert_reqs_x_check_hostname(redis_tls: Server, certs: Certs, cert_reqs: Any,
                                    check_hostname: Any, outcome: str) -> None:
    s = redis_tls("wrong_host")
    kw = {"ssl_ca_certs": certs.ca, "ssl_cert_reqs": cert_reqs,
          "ssl_check_hostname": check_hostname}
    if outcome == "ValueError":
        with pytest.raises(ValueError, match="ssl_check_hostname"):
            redis.Client(s.tls_url(), **kw)
    elif outcome == "ok":
        works(s.tls_url(), **kw)
    else:
        fails(outcome, "ssl_check_hostname=False", s.tls_url(), **kw)


def test_same_options_as_url_parameters(redis_tls: Server, certs: Certs) -> None:
    s = redis_tls("wrong_host")
    ca = quote(certs.ca, safe="")
    fails("hostname_mismatch", "ssl_check_hostname", s.tls_url(query=f"ssl_ca_certs={ca}"))
    works(s.tls_url(query=f"ssl_ca_certs={ca}&ssl_check_hostname=false"))
    works(s.tls_url(query="ssl_cert_reqs=none"))
    with pytest.raises(ValueError, match="ssl_check_hostname"):
        redis.Client(s.tls_url(query="ssl_cert_reqs=none&ssl_check_hostname=true"))


def test_mutual_tls(redis_tls: Server, certs: Certs) -> None:
    s = redis_tls(clients="yes")
    fails("client_cert_refused", "client cert", s.tls_url(), ssl_ca_certs=certs.ca)
    fails("client_cert_refused", "client cert", s.tls_url(), ssl_ca_certs=certs.ca,
          ssl_certfile=certs.client_untrusted.cert, ssl_keyfile=certs.client_untrusted.key)
    works(s.tls_url(), ssl_ca_certs=certs.ca, ssl_certfile=certs.client.cert,
          ssl_keyfile=certs.client.key)
    ca, cert, key = (quote(p, safe="") for p in (certs.ca, certs.client.cert, certs.client.key))
    works(s.tls_url(query=f"ssl_ca_certs={ca}&ssl_certfile={cert}&ssl_keyfile={key}"))


def test_bad_options_fail_at_once(redis_tls: Server, certs: Certs, tmp_path: Path) -> None:
    s = redis_tls()
    bad = [
        ({"ssl_ca_certs": str(tmp_path / "missing.pem")}, "no such file"),
        ({"ssl_ca_data": "not a certificate"}, "no certificate"),
        ({"ssl_certfile": certs.client.cert, "ssl_keyfile": certs.server.key}, "key"),
        ({"ssl_min_version": ssl.TLSVersion.TLSv1_1}, "1.2"),
        ({"ssl_cert_reqs": "sometimes"}, "ssl_cert_reqs"),
        # both load (as in redis-py), so a bad one of the two still fails
        ({"ssl_ca_certs": certs.ca, "ssl_ca_data": "x"}, "ssl_ca_data.*no certificate"),
    ]
    for kw, words in bad:
        with pytest.raises(ValueError, match=words):
            redis.Client(s.tls_url(), **kw)
    with pytest.raises(ValueError, match="rediss://"):
        redis.Client(f"redis://127.0.0.1:{s.port}/0", ssl_ca_certs=certs.ca)
    with pytest.raises(TypeError, match="rustls"):
        redis.Client(s.tls_url(), ssl=ssl.create_default_context())
    with pytest.raises(TypeError, match="ssl_check_hostname"):
        redis.Client(s.tls_url(), ssl_check_hostname="yes")
    with pytest.raises(TypeError, match="ssl_password must be"):
        redis.Client(s.tls_url(), ssl_password=1234)


def test_plain_server_on_tls_port(redis_tls: Server, certs: Certs,
                                  fake_tls_peer: Callable[[str], FakePeer]) -> None:
    # a server answering in plain text: refused at once, never read as Redis
    p = fake_tls_peer("plain")
    fails("not_supported", "redis://", f"rediss://127.0.0.1:{p.port}/0", ssl_ca_certs=certs.ca)
    # redis-server's plain port waits for a line that never comes: the
    # connect timeout ends it, and says TLS may be the cause
    s = redis_tls()
    c = redis.Client(f"rediss://127.0.0.1:{s.port}/0", ssl_ca_certs=certs.ca,
                     connect_timeout=1.0, timeout=5.0)
    t0 = time.monotonic()
    with pytest.raises(iokernel.ConnectionError) as ei:
        c.ping()
    assert time.monotonic() - t0 < 5.0
    assert ei.value.reason == "connect_timeout" and "TLS" in str(ei.value), ei.value
    c.close()


def test_server_closing_or_silent_during_handshake(
        certs: Certs, fake_tls_peer: Callable[[str], FakePeer]) -> None:
    p = fake_tls_peer("close")
    fails("closed", "closed the connection", f"rediss://127.0.0.1:{p.port}/0",
          ssl_ca_certs=certs.ca)
    assert p.accepted >= 1
    q = fake_tls_peer("silent")
    c = redis.Client(f"rediss://127.0.0.1:{q.port}/0", ssl_ca_certs=certs.ca,
                     connect_timeout=0.5, timeout=3.0)
    t0 = time.monotonic()
    with pytest.raises(iokernel.ConnectionError) as ei:
        c.ping()
    # never past the caller's own timeout, and never in plain text
    assert time.monotonic() - t0 < 3.0 + 1.0
    assert ei.value.reason in ("connect_timeout", "no_connection"), ei.value
    c.close()


def test_session_resumption(redis_tls: Server, certs: Certs) -> None:
    """Every reconnect of a service uses its one TLS configuration: at
    least 90 % of reconnects resume the session (TLS 1.3 tickets)."""
    s = redis_tls()
    c = redis.Client(s.tls_url(), ssl_ca_certs=certs.ca, timeout=5.0)
    c.ping()
    n = 30
    for i in range(n):
        with c.dedicated() as d:  # a new connection each time
            d.set(f"k{i}", i)
    st = c._svc.stats()
    assert st["tls_handshakes"] == n + 1, st
    assert st["tls_resumed"] >= 0.9 * n, st
    c.close()


def test_resumption_after_server_kills_connection(redis_tls: Server, certs: Certs) -> None:
    s = redis_tls()
    c = redis.Client(s.tls_url(), ssl_ca_certs=certs.ca, timeout=5.0,
                     client_name="resume-me")
    c.ping()
    before = c._svc.stats()
    for _ in range(5):
        s.command_raw("CLIENT", "KILL", "SKIPME", "yes", "TYPE", "normal")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                c.ping()
                break
            except iokernel.ConnectionError:
                time.sleep(0.05)
    after = c._svc.stats()
    reconnects = after["tls_handshakes"] - before["tls_handshakes"]
    assert reconnects >= 5, after
    assert after["tls_resumed"] - before["tls_resumed"] >= 0.9 * reconnects, after
    c.close()


async def test_async_clients_over_tls(redis_tls: Server, certs: Certs) -> None:
    s = redis_tls()
    c = redis.AsyncClient(s.tls_url(), ssl_ca_certs=certs.ca, timeout=10.0)
    try:
        await asyncio.gather(*(c.set(f"a{i}", i) for i in range(200)))
        got = await asyncio.gather(*(c.get(f"a{i}") for i in range(200)))
        assert got == [str(i).encode() for i in range(200)]
        big = b"x" * (1 << 20)  # many TLS records each way
        await c.set("big", big)
        assert await c.get("big") == big
    finally:
        await c.close()
