"""Servers for the TLS tests and benchmarks: redis-server with a TLS port,
PostgreSQL with ssl=on (certuser: client-certificate authentication only;
tlsonly: TLS only; plainonly: plain text only), and a fake peer that
misbehaves during the handshake."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
from typing import Any

import iokernel
from iokernel import pg
from tests.servers import PostgresServer, RedisServer
from tests.servers.postgres_server import _sql_literal
from tests.servers.process import free_port
from tests.tls.certs import CLIENT_USER, Certs, Pair

TLS_ONLY_USER = "tlsonly"
TLS_ONLY_PASSWORD = "tlsonly-pw"
PLAIN_ONLY_USER = "plainonly"
PLAIN_ONLY_PASSWORD = "plainonly-pw"


class RedisTlsServer(RedisServer):
    """redis-server with a TLS port next to its plain one."""

    def __init__(self, certs: Certs, pair: Pair, *, clients: str = "optional",
                 extra: tuple[str, ...] = ()) -> None:
        self.tls_port = free_port()
        super().__init__(extra_config=[
            f"tls-port {self.tls_port}",
            f"tls-cert-file {pair.cert}",
            f"tls-key-file {pair.key}",
            f"tls-ca-cert-file {certs.ca}",
            f"tls-auth-clients {clients}",
            *extra,
        ])

    def tls_url(self, host: str = "127.0.0.1", query: str = "") -> str:
        return f"rediss://{host}:{self.tls_port}/0" + (f"?{query}" if query else "")


class PgTlsServer(PostgresServer):
    """PostgreSQL with ssl=on; certuser logs in by client certificate only,
    tlsonly only over TLS, plainonly only in plain text. `extra`: more
    postgresql.conf lines (e.g. ciphers no client shares)."""

    def __init__(self, certs: Certs, pair: Pair, extra: tuple[str, ...] = ()) -> None:
        super().__init__(extra_config=[
            "ssl = on",
            "ssl_cert_file = 'server.crt'",
            "ssl_key_file = 'server.key'",
            "ssl_ca_file = 'root.crt'",
            *extra,
        ])
        self.certs = certs
        self.pair = pair
        self.users[TLS_ONLY_USER] = TLS_ONLY_PASSWORD
        self.users[PLAIN_ONLY_USER] = PLAIN_ONLY_PASSWORD
        self.users[CLIENT_USER] = ""

    def _hba(self) -> str:
        return "\n".join([
            "local   all      all                      trust",
            f"hostssl all      {CLIENT_USER}   127.0.0.1/32  cert",
            f"hostssl all      {TLS_ONLY_USER} 127.0.0.1/32  scram-sha-256",
            f"host    all      {TLS_ONLY_USER} 127.0.0.1/32  reject",
            f"hostssl all      {PLAIN_ONLY_USER} 127.0.0.1/32  reject",
            f"host    all      {CLIENT_USER}   127.0.0.1/32  reject",
            "host    all      all        127.0.0.1/32  scram-sha-256",
            "",
        ])

    def _setup_sql(self) -> list[str]:
        return [
            *super()._setup_sql(),
            f"CREATE ROLE {CLIENT_USER} LOGIN;",
            f"CREATE ROLE {TLS_ONLY_USER} LOGIN PASSWORD {_sql_literal(TLS_ONLY_PASSWORD)};",
            f"CREATE ROLE {PLAIN_ONLY_USER} LOGIN PASSWORD {_sql_literal(PLAIN_ONLY_PASSWORD)};",
            f"GRANT ALL ON DATABASE app TO {CLIENT_USER}, {TLS_ONLY_USER}, {PLAIN_ONLY_USER};",
        ]

    def _prepare(self) -> None:
        super()._prepare()
        for src, name in ((self.pair.cert, "server.crt"), (self.pair.key, "server.key"),
                          (self.certs.ca, "root.crt")):
            dst = self.data_dir / name
            shutil.copy(src, dst)
            os.chmod(dst, 0o600)
            if self._ids is not None:
                os.chown(dst, *self._ids)


class FakePeer:
    """Accepts connections on loopback and does `behaviour` with each:
    "close" (read the first bytes, then close), "silent" (read, never
    answer), "plain" (answer anything with a plain-text line)."""

    def __init__(self, behaviour: str) -> None:
        self.behaviour = behaviour
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._conns: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.1)
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.settimeout(5)
            with contextlib.suppress(OSError):
                conn.recv(4096)
            if self.behaviour == "close":
                conn.close()
            elif self.behaviour == "plain":
                with contextlib.suppress(OSError):
                    conn.sendall(b"-ERR this is not TLS\r\n")
                self._conns.append(conn)
            else:
                self._conns.append(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()
        for c in self._conns:
            c.close()


IS_TLS = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"


def pg_outcome(dsn: str, **kw: Any) -> str | iokernel.Error:
    """"tls" or "plain" (how a PostgreSQL connection went), or the error raised."""
    db = pg.Client(dsn, connect_timeout=5.0, timeout=10.0, connections=1, **kw)
    try:
        return "tls" if db.fetchval(IS_TLS) else "plain"
    except iokernel.Error as e:
        return e
    finally:
        db.close()
