"""RedisServer: redis-server on 127.0.0.1:<free port> plus a Unix socket, no
persistence, optional password and ACL users; helpers for tests (raw
commands, URLs, client count, killing clients).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.servers.process import LOOPBACK, ServerProcess, find_binary
from tests.servers.resp import resp_command


class RedisServer(ServerProcess):
    """redis-server on 127.0.0.1:<free port> plus a Unix socket, no persistence."""

    kind = "redis"

    def __init__(
        self,
        *,
        password: str | None = None,
        acl_users: dict[str, str] | None = None,
        extra_config: Sequence[str] = (),
        host: str = LOOPBACK,
        port: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.password = password
        self.acl_users = dict(acl_users or {})
        self.extra_config = list(extra_config)
        self.unix_path = str(self.dir / "redis.sock")
        self.binary = find_binary("redis-server")
        self._version: str | None = None

    def command(self) -> list[str]:
        conf = [
            f"port {self.port}",
            f"bind {self.host}",
            f"unixsocket {self.unix_path}",
            "unixsocketperm 700",
            'save ""',
            "appendonly no",
            "daemonize no",
            f"dir {self.dir}",
            f"logfile {self.log_path}",
            "loglevel notice",
            "protected-mode no",
            "databases 16",
        ]
        if self.password is not None:
            conf.append(f"requirepass {self.password}")
        for user, pw in self.acl_users.items():
            conf.append(f"user {user} on >{pw} ~* &* +@all")
        conf.extend(self.extra_config)
        path = self.dir / "redis.conf"
        path.write_text("\n".join(conf) + "\n")
        return [self.binary, str(path)]

    def ping(self) -> bool:
        return bool(self.command_raw("PING", timeout=1.0) == b"PONG")

    # -- helpers for tests
    def command_raw(self, *args: Any, timeout: float = 5.0) -> Any:
        """Run one command as the default user over a fresh raw connection."""
        return resp_command(
            self.host, self.port, *args, password=self.password, timeout=timeout
        )

    def flushall(self) -> None:
        self.command_raw("FLUSHALL")

    def url(self, db: int = 0, *, user: str | None = None, password: str | None = None,
            unix: bool = False) -> str:
        """redis://[user:pw@]127.0.0.1:PORT/DB (or unix://PATH?db=DB with unix=True).

        With no user/password given, the server's own password (if any) is included.
        """
        if user is not None:
            pw = password if password is not None else self.acl_users.get(user)
        else:
            pw = password if password is not None else self.password
        auth = ""
        if pw is not None:
            auth = f"{user or ''}:{pw}@"
        if unix:
            return f"unix://{auth}{self.unix_path}?db={db}"
        return f"redis://{auth}{self.host}:{self.port}/{db}"

    @property
    def version(self) -> str:
        if self._version is None:
            info = self.command_raw("INFO", "server").decode()
            for line in info.splitlines():
                if line.startswith("redis_version:"):
                    self._version = line.split(":", 1)[1].strip()
                    break
            else:
                self._version = "unknown"
        return self._version

    def client_count(self) -> int:
        """Connected clients, not counting the connection that asks."""
        text = self.command_raw("CLIENT", "LIST").decode()
        return max(0, len([ln for ln in text.splitlines() if ln.strip()]) - 1)

    def kill_clients(self) -> int:
        """Close every client connection from the server side (CLIENT KILL TYPE normal)."""
        return int(self.command_raw("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"))
