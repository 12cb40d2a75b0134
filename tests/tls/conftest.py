"""Servers for the TLS tests, with certificates made at set-up (certs.py):

  certs           session  the CA, server, client, expired, wrong-host and
                           untrusted certificates (tests.tls.certs.Certs)
  redis_tls       session  factory: redis-server with --tls-port, given the
                           server certificate and whether clients must show one
  pg_tls          session  PostgreSQL with ssl=on (good certificate): role
                           certuser authenticates by client certificate only,
                           tlsonly only over TLS (hostssl), app as usual
  pg_tls_wrong_host session  the same with the wrong-host certificate
  fake_tls_peer   function factory: a loopback server that misbehaves during
                           the handshake (closes, stays silent)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.tls.certs import Certs, make_certs
from tests.tls.servers import FakePeer, PgTlsServer, RedisTlsServer


@pytest.fixture(scope="session")
def certs() -> Iterator[Certs]:
    d = Path(tempfile.mkdtemp(prefix="iok-certs-"))
    os.chmod(d, 0o755)
    try:
        yield make_certs(d / "certs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_tls(certs: Certs) -> Iterator[Callable[..., RedisTlsServer]]:
    made: dict[tuple[Any, ...], RedisTlsServer] = {}

    def get(pair: str = "server", clients: str = "optional",
            extra: tuple[str, ...] = ()) -> RedisTlsServer:
        key = (pair, clients, extra)
        if key not in made:
            srv = RedisTlsServer(certs, getattr(certs, pair), clients=clients, extra=extra)
            srv.start()
            made[key] = srv
        return made[key]

    try:
        yield get
    finally:
        for srv in made.values():
            srv.stop(cleanup=True)


@pytest.fixture(scope="session")
def pg_tls(certs: Certs) -> Iterator[PgTlsServer]:
    with PgTlsServer(certs, certs.server) as srv:
        yield srv


@pytest.fixture(scope="session")
def pg_tls_wrong_host(certs: Certs) -> Iterator[PgTlsServer]:
    with PgTlsServer(certs, certs.wrong_host) as srv:
        yield srv


@pytest.fixture
def fake_tls_peer() -> Iterator[Callable[[str], FakePeer]]:
    peers: list[FakePeer] = []

    def make(behaviour: str) -> FakePeer:
        p = FakePeer(behaviour)
        peers.append(p)
        return p

    try:
        yield make
    finally:
        for p in peers:
            p.close()

