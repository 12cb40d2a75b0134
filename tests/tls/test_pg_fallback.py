"""libpq's fallbacks, against real PostgreSQL servers with ssl=on: `prefer`
goes on in plain text when the TLS handshake itself fails (the server said
'S', then shares no cipher with the client), not only when the server
answers 'N'; `allow` tries plain text first, then TLS; `require` and
`verify-*` never fall back. And the out-of-band cancel goes the way its
connection went: over TLS when the connection is TLS (also after `allow`
moved to TLS), in plain text when `allow`/`prefer` ended in plain text.

A relay in front of the server (it changes nothing) records the first bytes
of every connection, so the tests see what was sent: an SSLRequest, a
startup message or a CancelRequest."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.faults.relay import Relay
from tests.tls.certs import Certs
from tests.tls.servers import IS_TLS, PLAIN_ONLY_USER, TLS_ONLY_USER, PgTlsServer
from tests.tls.servers import pg_outcome as outcome

SSL_REQUEST = struct.pack(">ii", 8, 80877103)
CANCEL_CODE = struct.pack(">i", 80877102)


@pytest.fixture(scope="module")
def no_shared_cipher(certs: Certs) -> Iterator[PgTlsServer]:
    """ssl=on, but only TLS 1.2 with a CBC suite, which rustls does not
    have: the server answers 'S' to SSLRequest, then the handshake fails."""
    extra = ("ssl_max_protocol_version = 'TLSv1.2'",
             "ssl_ciphers = 'ECDHE-ECDSA-AES128-SHA256'")
    with PgTlsServer(certs, certs.server, extra=extra) as srv:
        yield srv


class Recorder(Relay):
    """A relay that keeps the first chunk each connection sent."""

    def __init__(self, srv: PgTlsServer) -> None:
        self.first: dict[int, bytes] = {}
        self._seen = threading.Lock()
        super().__init__(("127.0.0.1", srv.port), delay=lambda i: 0.0, max_conns=64,
                         watch_up=self._watch)

    def _watch(self, i: int, chunk: bytes) -> None:
        with self._seen:
            self.first.setdefault(i, chunk)

    def kinds(self) -> list[str]:
        """What each connection started with, in accept order."""
        with self._seen:
            firsts = [self.first[i] for i in sorted(self.first)]
        out = []
        for b in firsts:
            if b.startswith(SSL_REQUEST):
                out.append("ssl")
            elif b[4:8] == CANCEL_CODE:
                out.append("cancel")
            elif b[4:8] == struct.pack(">i", 196608):  # protocol 3.0 startup
                out.append("startup")
            else:
                out.append(f"other {b[:8]!r}")
        return out


def dsn_via(relay: Relay, srv: PgTlsServer, **params: Any) -> str:
    return srv.dsn(**params).replace(f":{srv.port}/", f":{relay.port}/")


def test_prefer_falls_back_when_the_tls_handshake_fails(no_shared_cipher: PgTlsServer,
                                                         certs: Certs) -> None:
    srv = no_shared_cipher
    with Recorder(srv) as r:
        assert outcome(dsn_via(r, srv, sslmode="prefer", application_name="p1")) == "plain"
        # TLS was asked for and failed, then plain text on a new connection
        assert r.kinds()[:2] == ["ssl", "startup"], r.kinds()
    with Recorder(srv) as r:
        assert outcome(dsn_via(r, srv, sslmode="allow", application_name="a1")) == "plain"
        assert r.kinds()[:1] == ["startup"], r.kinds()


@pytest.mark.parametrize("mode", ["require", "verify-ca", "verify-full"])
def test_require_and_verify_never_fall_back(no_shared_cipher: PgTlsServer, certs: Certs,
                                            mode: str) -> None:
    srv = no_shared_cipher
    with Recorder(srv) as r:
        got = outcome(dsn_via(r, srv, sslmode=mode, sslrootcert=certs.ca, application_name=mode))
        assert isinstance(got, iokernel.TLSError), got
        assert str(r.port) in str(got), got
        kinds = r.kinds()
    # every attempt (the service retries in the background) asked for TLS;
    # no startup message ever went out in plain text
    assert kinds and set(kinds) == {"ssl"}, kinds


def cancel_works(db: pg.Client) -> None:
    """A query past its timeout is cancelled on the server by the kernel:
    the next query on the one connection is answered (it would otherwise
    wait behind a 120 s sleep, past its own 60 s timeout)."""
    sleep = "SELECT pg_sleep($1)"
    db.fetchval(sleep, 0.0, timeout=30.0)  # its types learned: the next one is only run
    with pytest.raises(iokernel.TimeoutError):
        db.fetchval(sleep, 120.0)
    assert db.fetchval("SELECT 2", timeout=60.0) == 2


def handshakes(db: pg.Client) -> int:
    return int(db._svc.stats()["tls_handshakes"])


def test_cancel_over_tls_after_allow_moved_to_tls(pg_tls: PgTlsServer) -> None:
    # tlsonly is refused in plain text: allow retries with TLS
    db = pg.Client(pg_tls.dsn(user=TLS_ONLY_USER, sslmode="allow", application_name="c-allow"),
                   timeout=2.0, connections=1)
    try:
        db.wait_ready(30)  # the 2 s timeout is for the sleep, not the connect
        assert db.fetchval(IS_TLS, timeout=30.0) is True
        before = handshakes(db)
        cancel_works(db)
        assert handshakes(db) == before + 1, "the cancel did not go over TLS"
    finally:
        db.close()


def test_cancel_in_plain_text_after_prefer_fell_back(pg_tls: PgTlsServer) -> None:
    # plainonly is refused over TLS: prefer retries in plain text
    db = pg.Client(pg_tls.dsn(user=PLAIN_ONLY_USER, sslmode="prefer",
                              application_name="c-prefer"), timeout=2.0, connections=1)
    try:
        db.wait_ready(30)  # the 2 s timeout is for the sleep, not the connect
        assert db.fetchval(IS_TLS, timeout=30.0) is False
        before = handshakes(db)
        cancel_works(db)
        assert handshakes(db) == before, "the cancel went over TLS"
    finally:
        db.close()


def test_cancel_in_plain_text_after_the_handshake_failed(no_shared_cipher: PgTlsServer) -> None:
    srv = no_shared_cipher
    with Recorder(srv) as r:
        db = pg.Client(dsn_via(r, srv, sslmode="prefer", application_name="c-hs"),
                       timeout=2.0, connections=1)
        try:
            db.wait_ready(30)  # the 2 s timeout is for the sleep, not the connect
            assert db.fetchval(IS_TLS, timeout=30.0) is False
            assert r.kinds() == ["ssl", "startup"], r.kinds()
            cancel_works(db)
            # the cancel's own connection: the CancelRequest at once, with no
            # TLS attempt before it
            assert r.kinds()[2:] == ["cancel"], r.kinds()
        finally:
            db.close()
