"""sslnegotiation=direct (PostgreSQL 17's direct TLS: no SSLRequest, ALPN
"postgresql"). Only PostgreSQL 15 is installed here, which cannot answer
it, so the peer is Python's own ssl module acting as the server side of the
handshake: it checks what the client sends, not a PostgreSQL 17 server's
behaviour. It peeks at the first bytes (a TLS ClientHello, no SSLRequest
before it), completes the handshake offering ALPN "postgresql" (or none),
reads the startup message over TLS and answers with a FATAL error that
names what it saw."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.tls.certs import Certs

SSL_REQUEST = struct.pack(">ii", 8, 80877103)


class DirectPeer:
    def __init__(self, certs: Certs, alpn: bool) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(certs.server.cert, certs.server.key)
        if alpn:
            self.ctx.set_alpn_protocols(["postgresql"])
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.first: list[bytes] = []
        self.alpn: list[str | None] = []
        self.startups: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.first) < 20:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError, ssl.SSLError), conn:
                conn.settimeout(10)
                self.first.append(conn.recv(8, socket.MSG_PEEK))
                tls = self.ctx.wrap_socket(conn, server_side=True)
                self.alpn.append(tls.selected_alpn_protocol())
                (n,) = struct.unpack(">i", self._read(tls, 4))
                self.startups.append(self._read(tls, n - 4))
                fields = b"SFATAL\0VFATAL\0C28000\0Mdirect-peer: startup read over TLS\0\0"
                tls.sendall(b"E" + struct.pack(">i", 4 + len(fields)) + fields)
                tls.close()

    @staticmethod
    def _read(s: ssl.SSLSocket, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = s.recv(n - len(out))
            if not chunk:
                raise OSError("closed")
            out += chunk
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def attempt(port: int, certs: Certs, **kw: Any) -> iokernel.Error:
    dsn = (f"postgresql://app:pw@127.0.0.1:{port}/app?sslmode=verify-full"
           f"&sslrootcert={certs.ca}&sslnegotiation=direct")
    db = pg.Client(dsn, connect_timeout=5.0, timeout=10.0, connections=1, **kw)
    try:
        db.fetchval("SELECT 1")
    except iokernel.Error as e:
        return e
    finally:
        db.close()
    raise AssertionError("the fake peer never lets a query succeed")


def test_direct_sends_a_client_hello_with_alpn_postgresql(certs: Certs) -> None:
    peer = DirectPeer(certs, alpn=True)
    try:
        err = attempt(peer.port, certs)
        assert "direct-peer: startup read over TLS" in str(err), err
        # the first bytes were a TLS handshake record, no SSLRequest
        assert peer.first and peer.first[0][:1] == b"\x16", peer.first
        assert not peer.first[0].startswith(SSL_REQUEST)
        assert peer.alpn[0] == "postgresql"
        assert b"user\0app\0" in peer.startups[0]
    finally:
        peer.close()


def test_direct_fails_when_the_server_selects_no_alpn(certs: Certs) -> None:
    peer = DirectPeer(certs, alpn=False)
    try:
        err = attempt(peer.port, certs)
        assert isinstance(err, iokernel.TLSError), err
        assert err.tls_reason == "not_supported" and "ALPN" in str(err), err
        end = time.monotonic() + 10  # the peer's side of the handshake ends after ours
        while not peer.alpn and time.monotonic() < end:
            time.sleep(0.01)
        assert peer.alpn and peer.alpn[0] is None
        assert not peer.startups, "no startup message may follow without ALPN"
    finally:
        peer.close()


def test_direct_needs_require_or_stronger(certs: Certs) -> None:
    with pytest.raises(ValueError, match="sslnegotiation=direct needs sslmode require"):
        pg.Client("postgresql://app@127.0.0.1:1/app?sslmode=prefer&sslnegotiation=direct")
