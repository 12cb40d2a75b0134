"""A Redis Sentinel group on loopback for tests and the bench: a primary, a
replica (``replicaof`` the primary) and three sentinels monitoring them as
``mymaster`` with quorum 2, a short ``down-after-milliseconds`` and
``failover-timeout`` so that a failover takes a second or two.

    with SentinelGroup() as g:
        g.url(db=0)                   # redis+sentinel://127.0.0.1:P1,.../mymaster/0
        g.failover()                  # SENTINEL FAILOVER mymaster (retried while refused)
        g.wait_master(g.replica)      # until every sentinel names it the primary
        g.primary.kill()              # kill -9: the sentinels fail over on their own

With ``tls=GroupTls(...)`` every process also has a TLS port: the data
nodes replicate over TLS and the sentinels talk TLS to them and to each
other (``tls-replication yes``), so every address the sentinels announce
is a TLS port; ``url()`` is then a ``rediss+sentinel://`` URL. The plain
ports stay open for the helpers below (``command_raw``).

``start()`` returns once every sentinel sees the replica and the other two
sentinels (so a failover can be voted and has a replica to promote). Every
wait is bounded; ``stop()`` stops all five processes. The sentinels run
Debian's ``redis-sentinel`` (``redis-server --sentinel`` where it is not
installed).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.servers.process import LOOPBACK, ServerError, ServerProcess, find_binary, free_port
from tests.servers.redis_server import RedisServer
from tests.servers.resp import RespError, resp_command

if TYPE_CHECKING:
    from typing_extensions import Self

MASTER = "mymaster"


@dataclass(frozen=True)
class GroupTls:
    """The CA and the (certificate, key) files of the data nodes and of the
    sentinels of a group over TLS."""

    ca: str
    data: tuple[str, str]
    sentinels: tuple[str, str]


def tls_config(port: int, pair: tuple[str, str], ca: str) -> list[str]:
    """A TLS port next to the plain one; TLS to masters (replication, a
    sentinel's links), the CA to check them with; no client certificate
    asked for (the servers' certificates are for serverAuth only)."""
    return [
        f"tls-port {port}",
        f"tls-cert-file {pair[0]}",
        f"tls-key-file {pair[1]}",
        f"tls-ca-cert-file {ca}",
        "tls-auth-clients no",
        "tls-replication yes",
    ]


class SentinelServer(ServerProcess):
    """One redis-sentinel monitoring `MASTER` at the given primary."""

    kind = "sentinel"

    def __init__(self, primary_port: int, *, down_after_ms: int, failover_timeout_ms: int,
                 quorum: int = 2, tls: GroupTls | None = None) -> None:
        super().__init__()
        self.primary_port = primary_port
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.quorum = quorum
        self.tls = tls
        self.tls_port = free_port() if tls else None

    def command(self) -> list[str]:
        conf = [
            f"port {self.port}",
            f"bind {self.host}",
            "daemonize no",
            "protected-mode no",
            f"dir {self.dir}",
            f"logfile {self.log_path}",
            f"sentinel monitor {MASTER} {LOOPBACK} {self.primary_port} {self.quorum}",
            f"sentinel down-after-milliseconds {MASTER} {self.down_after_ms}",
            f"sentinel failover-timeout {MASTER} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {MASTER} 1",
        ]
        if self.tls is not None and self.tls_port is not None:
            conf += tls_config(self.tls_port, self.tls.sentinels, self.tls.ca)
        path = self.dir / "sentinel.conf"  # rewritten by the sentinel as it learns
        path.write_text("\n".join(conf) + "\n")
        try:
            return [find_binary("redis-sentinel"), str(path)]
        except ServerError:  # the same binary, in sentinel mode
            return [find_binary("redis-server"), str(path), "--sentinel"]

    def ping(self) -> bool:
        return bool(self.command_raw("PING", timeout=1.0) == b"PONG")

    def command_raw(self, *args: Any, timeout: float = 5.0) -> Any:
        return resp_command(self.host, self.port, *args, timeout=timeout)

    def master_addr(self) -> tuple[str, int]:
        ip, port = self.command_raw("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER)
        return ip.decode(), int(port)


def _fields(flat: list[Any]) -> dict[str, str]:
    return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat) - 1, 2)}


class SentinelGroup:
    """A primary, a replica and three sentinels (see the module's text)."""

    def __init__(self, *, down_after_ms: int = 1000, failover_timeout_ms: int = 4000,
                 start_timeout: float = 60.0, tls: GroupTls | None = None) -> None:
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.start_timeout = start_timeout
        self.tls = tls
        #: id() of a data node -> its TLS port (the one announced)
        self.tls_ports: dict[int, int] = {}
        self.primary = self._node()
        self.replica: RedisServer | None = None
        self.sentinels: list[SentinelServer] = []

    def _node(self, *config: str) -> RedisServer:
        if self.tls is None:
            return RedisServer(extra_config=list(config))
        port = free_port()
        node = RedisServer(extra_config=[*tls_config(port, self.tls.data, self.tls.ca), *config])
        self.tls_ports[id(node)] = port
        return node

    def addr(self, node: RedisServer) -> tuple[str, int]:
        """The address the sentinels give for `node` (its TLS port with TLS)."""
        return node.host, self.tls_ports.get(id(node), node.port)

    # -- lifecycle
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        try:
            self.primary.start()
            primary_port = self.addr(self.primary)[1]
            self.replica = self._node(f"replicaof {LOOPBACK} {primary_port}")
            self.replica.start()
            for _ in range(3):
                s = SentinelServer(primary_port, down_after_ms=self.down_after_ms,
                                   failover_timeout_ms=self.failover_timeout_ms, tls=self.tls)
                s.start()
                self.sentinels.append(s)
            self._wait_formed()
        except BaseException:
            self.stop()
            raise

    def _wait_formed(self) -> None:
        """Until the replica is in sync and every sentinel sees it and the
        two other sentinels."""
        assert self.replica is not None
        deadline = time.monotonic() + self.start_timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                info = self.replica.command_raw("INFO", "replication").decode()
                if "master_link_status:up" not in info:
                    last = "replica not in sync yet"
                    raise _NotYet
                for s in self.sentinels:
                    reps = s.command_raw("SENTINEL", "REPLICAS", MASTER)
                    ok = [r for r in reps if "s_down" not in _fields(r).get("flags", "")
                          and "disconnected" not in _fields(r).get("flags", "")]
                    if not ok:
                        last = f"sentinel {s.port} sees no replica yet"
                        raise _NotYet
                    others = s.command_raw("SENTINEL", "SENTINELS", MASTER)
                    if len(others) < 2:
                        last = f"sentinel {s.port} sees {len(others)} other sentinels"
                        raise _NotYet
                return
            except (_NotYet, OSError, RespError):
                time.sleep(0.1)
        raise ServerError(f"sentinel group not formed within {self.start_timeout} s: {last}")

    def stop(self) -> None:
        for s in self.sentinels:
            s.stop(cleanup=True)
        for r in (self.replica, self.primary):
            if r is not None:
                r.stop(cleanup=True)

    # -- helpers for tests
    @property
    def data_nodes(self) -> list[RedisServer]:
        return [n for n in (self.primary, self.replica) if n is not None]

    def url(self, db: int = 0, *, master: str = MASTER, query: str = "",
            host: str | None = None, plain_sentinels: bool = False) -> str:
        """The group's URL: ``rediss+sentinel://`` to the sentinels' TLS
        ports with TLS (their plain ports with `plain_sentinels`), each
        named `host` (default: its address)."""
        tls = self.tls is not None and not plain_sentinels
        hosts = ",".join(f"{host or s.host}:{s.tls_port if tls else s.port}"
                         for s in self.sentinels)
        q = f"?{query}" if query else ""
        scheme = "rediss+sentinel" if self.tls is not None else "redis+sentinel"
        return f"{scheme}://{hosts}/{master}/{db}{q}"

    def node_at(self, addr: tuple[str, int]) -> RedisServer:
        for n in self.data_nodes:
            if self.addr(n) == addr:
                return n
        raise ServerError(f"no data node at {addr}")

    def current_master(self) -> tuple[str, int]:
        """The primary as the first sentinel that answers names it."""
        for s in self.sentinels:
            with contextlib.suppress(OSError, RespError):
                return s.master_addr()
        raise ServerError("no sentinel answers")

    def subscribed(self) -> int:
        """How many live sentinels have a subscribed client (a client's
        watch: the sentinels' own links to each other never subscribe)."""
        n = 0
        for s in self.sentinels:
            if s.running:
                with contextlib.suppress(OSError, RespError):
                    text = s.command_raw("CLIENT", "LIST").decode()
                    n += any(" sub=0 " not in line for line in text.splitlines())
        return n

    def failover(self, timeout: float = 30.0) -> None:
        """``SENTINEL FAILOVER mymaster``, retried while a sentinel refuses
        (no good replica yet, a failover in progress)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for s in self.sentinels:
                try:
                    s.command_raw("SENTINEL", "FAILOVER", MASTER)
                    return
                except (OSError, RespError) as e:
                    last = str(e)
            time.sleep(0.2)
        raise ServerError(f"SENTINEL FAILOVER refused for {timeout} s: {last}")

    def wait_master(self, node: RedisServer, timeout: float = 30.0) -> None:
        """Until every live sentinel names `node` the primary and it says so."""
        want = self.addr(node)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            seen = []
            for s in self.sentinels:
                if s.running:
                    with contextlib.suppress(OSError, RespError):
                        seen.append(s.master_addr())
            role = None
            with contextlib.suppress(OSError, RespError):
                role = node.command_raw("ROLE")[0]
            if seen and all(a == want for a in seen) and role == b"master":
                return
            time.sleep(0.05)
        raise ServerError(f"{want} did not become the primary within {timeout} s")


class _NotYet(Exception):
    pass
