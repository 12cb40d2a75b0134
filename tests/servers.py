"""Real servers (from Debian packages) started privately for tests, the demo and the bench.

Each server runs as a child process on a free loopback port with its own
temporary directory, and is stopped (SIGTERM, then SIGKILL) when done. Every wait
is bounded.

    with RedisServer() as srv:           # or srv = RedisServer(); srv.start()
        srv.url()                        # redis://127.0.0.1:PORT/0
        srv.unix_path                    # /tmp/iok-redis-XXXX/redis.sock
        resp_command(srv.host, srv.port, "FLUSHALL")
        srv.restart()                    # same port, same password (reconnect tests)
        with srv.frozen(): ...           # SIGSTOP/SIGCONT: a server that stops answering

    RedisServer(password="pw", acl_users={"alice": "alicepw"})   # auth tests

    with PostgresServer() as pg:         # initdb'd once per process, copied per server
        pg.dsn()                         # postgresql://app:PW@127.0.0.1:PORT/app
        pg.dsn(user="md5user", application_name="x")   # md5 auth; plainuser: cleartext
        pg.sql("SELECT 1")               # via psql over the Unix socket (not iokernel)
        pg.terminate("x"); pg.kill(); pg.restart()

Command line (used by the Makefile for `make demo` / `make bench`):

    python -m tests.servers redis [--password PW] [--env NAME]... [--reuse-env] [-- CMD ...]
    python -m tests.servers postgres [--password PW] [--env NAME]... [--reuse-env] [-- CMD ...]

With a command: start the server, export its URL as IOKERNEL_REDIS_URL (postgres:
its DSN as IOKERNEL_PG_DSN) and as every --env NAME, run the command, stop the
server, exit with the command's status. The two nest:
`python -m tests.servers redis --env A -- python -m tests.servers postgres --env B -- CMD`.
With --reuse-env and the first --env variable already set, no server is started.
Without a command: print the URL, write --pidfile if asked, and serve until
SIGINT/SIGTERM.

To add a server kind (postgres, nginx, memcached): subclass ServerProcess,
implement command() and ping(), and register it in SERVER_KINDS.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from typing_extensions import Self

LOOPBACK = "127.0.0.1"


class ServerError(RuntimeError):
    """A test server could not be started or stopped."""


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port on `host` that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def dead_port(host: str = LOOPBACK) -> int:
    """A port where a connect is refused at once (for 'server is down' tests)."""
    return free_port(host)


def find_binary(name: str, extra_dirs: Sequence[str] = ()) -> str:
    found = shutil.which(name)
    if found:
        return found
    for d in (*extra_dirs, "/usr/bin", "/usr/sbin", "/usr/local/bin"):
        p = Path(d) / name
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    raise ServerError(
        f"{name} not found on PATH or in /usr/bin; run `make deps` "
        "(scripts/ensure-deps.sh installs the Debian packages)"
    )


# --------------------------------------------------------------------------- RESP
def encode_command(args: Sequence[Any]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        elif isinstance(a, (int, float)):
            b = repr(a).encode()
        else:
            raise TypeError(f"cannot encode {type(a).__name__} as a RESP bulk string")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespError(Exception):
    """An error reply (-ERR ...) from the server."""


class RespReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return out
            self._fill()

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[: n + 2]
        return out

    def reply(self) -> Any:
        """One RESP2/RESP3 reply. Error replies are returned as RespError instances."""
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"="):
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        if kind == b"%":
            n = int(rest)
            return {self.reply(): self.reply() for _ in range(n)}
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        if kind == b"(":
            return int(rest)
        raise ValueError(f"unexpected RESP reply line {line!r}")


def resp_command(
    host: str,
    port: int,
    *args: Any,
    password: str | None = None,
    username: str | None = None,
    unix_path: str | None = None,
    timeout: float = 5.0,
) -> Any:
    """Send one command on a fresh connection and return the reply (raises RespError).

    Independent of iokernel on purpose: fixtures use it to flush and inspect
    the server whatever state the library under test is in.
    """
    return resp_pipeline(
        host, port, [args], password=password, username=username,
        unix_path=unix_path, timeout=timeout,
    )[0]


def resp_pipeline(
    host: str,
    port: int,
    commands: Sequence[Sequence[Any]],
    *,
    password: str | None = None,
    username: str | None = None,
    unix_path: str | None = None,
    timeout: float = 5.0,
) -> list[Any]:
    """Send several commands on one fresh connection; raise RespError on any error reply."""
    cmds: list[Sequence[Any]] = list(commands)
    if password is not None:
        cmds.insert(0, ("AUTH", username, password) if username else ("AUTH", password))
    if unix_path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: Any = unix_path
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, port)
    with sock:
        sock.settimeout(timeout)
        sock.connect(target)
        sock.sendall(b"".join(encode_command(c) for c in cmds))
        reader = RespReader(sock)
        replies = [reader.reply() for _ in cmds]
    if password is not None:
        auth_reply = replies.pop(0)
        if isinstance(auth_reply, RespError):
            raise auth_reply
    for r in replies:
        if isinstance(r, RespError):
            raise r
    return replies


# ---------------------------------------------------------------- generic process
class ServerProcess:
    """A server binary run as a child process on a private loopback port.

    Subclasses implement command() (argv; may write config files into
    self.dir) and ping() (True once the server answers).
    """

    kind: ClassVar[str] = "server"
    start_timeout: ClassVar[float] = 15.0
    stop_timeout: ClassVar[float] = 10.0

    def __init__(self, *, host: str = LOOPBACK, port: int | None = None) -> None:
        self.host = host
        self._fixed_port = port
        self.port = port or 0
        self.dir = Path(tempfile.mkdtemp(prefix=f"iok-{self.kind}-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.dir / f"{self.kind}.log"
        self._log_file: Any = None

    # -- to implement
    def command(self) -> list[str]:
        raise NotImplementedError

    def ping(self) -> bool:
        raise NotImplementedError

    # -- lifecycle
    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(cleanup=True)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> None:
        if self.running:
            return
        attempts = 1 if (self._fixed_port or self.port) else 3
        last = ""
        for _ in range(attempts):
            if not self.port:
                self.port = free_port(self.host)
            try:
                self._spawn_and_wait()
                return
            except ServerError as e:
                last = str(e)
                if not self._fixed_port and "in use" in last.lower():
                    self.port = 0  # somebody took the port between probe and bind
                    continue
                raise
        raise ServerError(last)

    def _spawn_and_wait(self) -> None:
        argv = self.command()
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self.proc = subprocess.Popen(
            argv,
            cwd=self.dir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal reaches us, not it
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._reap()
                raise ServerError(
                    f"{self.kind} exited with status {self.proc.returncode} at start "
                    f"(port {self.port}): {self.log_tail()}"
                )
            with contextlib.suppress(OSError, RespError, ValueError):
                if self.ping():
                    return
            time.sleep(0.02)
        self.kill()
        raise ServerError(
            f"{self.kind} did not answer within {self.start_timeout}s "
            f"on port {self.port}: {self.log_tail()}"
        )

    def log_tail(self, n: int = 20) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-n:])

    def _reap(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def _signal(self, sig: int) -> None:
        if self.running and self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)

    def stop(self, *, cleanup: bool = False) -> None:
        """Graceful stop (SIGTERM; SIGKILL after stop_timeout). cleanup also removes the dir."""
        if self.proc is not None:
            self._signal(signal.SIGCONT)  # in case it is frozen
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(self.stop_timeout)
            self._reap()
        if cleanup:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self) -> None:
        """Abrupt death (SIGKILL): connections drop without any goodbye."""
        if self.proc is not None:
            self._signal(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(self.stop_timeout)
            self._reap()

    def restart(self, *, down_for: float = 0.0, hard: bool = False) -> None:
        """Stop (or kill if hard), optionally stay down for `down_for` s, start on the same port."""
        if hard:
            self.kill()
        else:
            self.stop()
        if down_for > 0:
            time.sleep(down_for)
        deadline = time.monotonic() + self.start_timeout
        while True:
            try:
                self._spawn_and_wait()
                return
            except ServerError as e:
                if "in use" not in str(e).lower() or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """The process is stopped (SIGSTOP) inside the block: connects and requests hang."""
        self._signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self._signal(signal.SIGCONT)


# ---------------------------------------------------------------------- redis
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


# ----------------------------------------------------------------- postgres
PG_USER = "app"
PG_PASSWORD = "iok-pg-pw"
PG_DB = "app"
PG_MD5_USER = "md5user"
PG_MD5_PASSWORD = "md5user-pw"
PG_PLAIN_USER = "plainuser"
PG_PLAIN_PASSWORD = "plainuser-pw"
PG_OS_USER = "postgres"


class PgError(RuntimeError):
    """psql reported an error (PostgresServer.sql)."""


def pg_bindir() -> Path:
    """Directory holding initdb/postgres/psql/pgbench of the installed PostgreSQL server.

    $IOK_PG_BINDIR wins; then the newest /usr/lib/postgresql/*/bin (Debian); then
    `pg_config --bindir`; then wherever `postgres` is on PATH.
    """
    candidates: list[Path] = []
    if os.environ.get("IOK_PG_BINDIR"):
        candidates.append(Path(os.environ["IOK_PG_BINDIR"]))

    def _ver(p: Path) -> tuple[int, ...]:
        try:
            return tuple(int(x) for x in p.parent.name.split("."))
        except ValueError:
            return (0,)

    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_ver, reverse=True)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
            if out:
                candidates.append(Path(out))
    on_path = shutil.which("postgres")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for d in candidates:
        if (d / "postgres").is_file() and (d / "initdb").is_file():
            return d
    raise ServerError(
        "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin "
        "or pg_config --bindir; run `make deps` (scripts/apt-packages.txt has postgresql) "
        "or set IOK_PG_BINDIR"
    )


def _pg_os_user() -> tuple[int, int] | None:
    """(uid, gid) to run the server as, or None to run it as ourselves.

    PostgreSQL refuses to run as root. As root we use the `postgres` system user
    (Debian's package creates it), creating it if missing.
    """
    if os.geteuid() != 0:
        return None
    import pwd

    try:
        pw = pwd.getpwnam(PG_OS_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
             "--shell", "/usr/sbin/nologin", PG_OS_USER],
            check=True, capture_output=True, timeout=30,
        )
        pw = pwd.getpwnam(PG_OS_USER)
    return pw.pw_uid, pw.pw_gid


def _as_pg_user(argv: list[str]) -> list[str]:
    """argv run as the postgres OS user when we are root (setpriv execs: same pid)."""
    ids = _pg_os_user()
    if ids is None:
        return argv
    uid, gid = ids
    return [find_binary("setpriv"), f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
            "--", *argv]


def _chown_tree(path: Path, ids: tuple[int, int] | None) -> None:
    if ids is None:
        return
    uid, gid = ids
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)


def _sql_literal(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _sql_ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def pg_startup_ping(host: str, port: int, timeout: float = 1.0) -> bool:
    """True when the server takes connections: it answers a startup packet with an
    authentication request ('R') rather than an error such as 57P03 'starting up'.
    Raw socket, no client library; the connection is dropped during authentication
    (which the server does not log as an error)."""
    params = b"user\0" + PG_USER.encode() + b"\0database\0" + PG_DB.encode() + b"\0\0"
    body = (196608).to_bytes(4, "big") + params
    packet = (len(body) + 4).to_bytes(4, "big") + body
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(packet)
        head = b""
        while len(head) < 5:  # read the whole message: unread data would make close() a RST
            chunk = sock.recv(5 - len(head))
            if not chunk:
                return False
            head += chunk
        remaining = int.from_bytes(head[1:5], "big") - 4
        while remaining > 0:
            chunk = sock.recv(min(remaining, 65536))
            if not chunk:
                break
            remaining -= len(chunk)
        sock.shutdown(socket.SHUT_WR)
    return head[:1] == b"R"


class PostgresServer(ServerProcess):
    """A throw-away PostgreSQL cluster on 127.0.0.1:<free port> (+ a Unix socket in its dir).

    Roles: superuser `app` (SCRAM; also owns database `app`), `md5user` (md5 hash,
    md5 auth), `plainuser` (cleartext `password` auth), plus the bootstrap superuser
    `postgres`, reachable only over the Unix socket with trust (for sql(), i.e. psql).
    Durability is off (fsync, synchronous_commit, full_page_writes).

    initdb runs once per process and settings; each server copies that template
    cluster, so a fresh server costs a copy and a start (~0.5 s).

        with PostgresServer() as pg:
            pg.dsn()                                  # postgresql://app:...@127.0.0.1:PORT/app
            pg.dsn(user="md5user", application_name="t")
            pg.sql("SELECT 1")                        # '1' (psql -At output)
            pg.terminate("t")                         # pg_terminate_backend by application_name
            pg.restart(); pg.kill()
    """

    kind = "postgres"
    start_timeout = 30.0
    env_name = "IOKERNEL_PG_DSN"

    _templates: ClassVar[dict[tuple[Any, ...], Path]] = {}

    def __init__(
        self,
        *,
        password: str | None = None,
        extra_config: Sequence[str] = (),
        host: str = LOOPBACK,
        port: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self.bindir = pg_bindir()
        self.password = PG_PASSWORD if password is None else password
        self.users: dict[str, str] = {
            PG_USER: self.password,
            PG_MD5_USER: PG_MD5_PASSWORD,
            PG_PLAIN_USER: PG_PLAIN_PASSWORD,
        }
        self.extra_config = list(extra_config)
        self.data_dir = self.dir / "data"
        self.socket_dir = str(self.dir)
        self._ids = _pg_os_user()
        self._version: str | None = None

    # -- template cluster (initdb once per process)
    def _settings(self) -> list[str]:
        return [
            "listen_addresses = '127.0.0.1'",
            "password_encryption = 'scram-sha-256'",
            "max_connections = 100",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = off",
            "shared_buffers = 128MB",
            "log_destination = 'stderr'",
            "logging_collector = off",
            "log_min_messages = warning",
            "log_line_prefix = '%m [%p] %q%u@%d %a '",
            "lc_messages = 'C'",
            "timezone = 'UTC'",
            *self.extra_config,
        ]

    def _hba(self) -> str:
        return "\n".join([
            "# TYPE  DATABASE USER       ADDRESS       METHOD",
            "local   all      all                      trust",
            f"host    all      {PG_MD5_USER}    127.0.0.1/32  md5",
            f"host    all      {PG_PLAIN_USER}  127.0.0.1/32  password",
            "host    all      all        127.0.0.1/32  scram-sha-256",
            "",
        ])

    def _setup_sql(self) -> list[str]:
        return [
            f"CREATE ROLE {PG_USER} LOGIN SUPERUSER PASSWORD {_sql_literal(self.password)};",
            f"CREATE DATABASE {PG_DB} OWNER {PG_USER};",
            "SET password_encryption = 'md5';",
            f"CREATE ROLE {PG_MD5_USER} LOGIN PASSWORD {_sql_literal(PG_MD5_PASSWORD)};",
            "SET password_encryption = 'scram-sha-256';",
            f"CREATE ROLE {PG_PLAIN_USER} LOGIN PASSWORD {_sql_literal(PG_PLAIN_PASSWORD)};",
        ]

    def _template(self) -> Path:
        key = (str(self.bindir), self.password, tuple(self.extra_config), self._ids)
        tpl = self._templates.get(key)
        if tpl is not None and (tpl / "data" / "PG_VERSION").is_file():
            return tpl
        tpl = Path(tempfile.mkdtemp(prefix="iok-postgres-template-"))
        atexit.register(shutil.rmtree, tpl, True)
        _chown_tree(tpl, self._ids)
        data = tpl / "data"
        log = tpl / "initdb.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "LC_"))}
        env.update(LANG="C.UTF-8", LC_ALL="C.UTF-8")
        steps: list[tuple[list[str], str | None]] = [
            ([str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres",
              "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"], None),
            ([str(self.bindir / "postgres"), "--single", "-D", str(data),
              "-c", "fsync=off", "-c", "log_min_messages=warning", "postgres"],
             "\n".join(self._setup_sql()) + "\n"),
        ]
        for argv, stdin in steps:
            with open(log, "ab") as out:
                proc = subprocess.run(
                    _as_pg_user(argv), cwd=tpl, env=env, stdout=out, stderr=subprocess.STDOUT,
                    input=stdin.encode() if stdin else None, timeout=120, check=False,
                )
            text = log.read_text(errors="replace")
            if proc.returncode != 0 or "ERROR:" in text:
                raise ServerError(
                    f"{Path(argv[0]).name} failed (status {proc.returncode}): "
                    + "\n".join(text.splitlines()[-20:])
                )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write("\n# iokernel test server (tests/servers.py)\n")
            conf.write("\n".join(self._settings()) + "\n")
        (data / "pg_hba.conf").write_text(self._hba())
        _chown_tree(tpl, self._ids)
        self._templates[key] = tpl
        return tpl

    def _prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        tpl = self._template()
        subprocess.run(["cp", "-a", str(tpl / "data"), str(self.data_dir)], check=True,
                       capture_output=True, timeout=120)
        _chown_tree(self.dir, self._ids)
        os.chmod(self.data_dir, 0o700)

    # -- ServerProcess
    def command(self) -> list[str]:
        self._prepare()
        if self._ids is not None and self.log_path.exists():
            os.chown(self.log_path, *self._ids)
        return _as_pg_user([
            str(self.bindir / "postgres"), "-D", str(self.data_dir),
            "-p", str(self.port), "-k", self.socket_dir,
            "-c", f"listen_addresses={self.host}",
        ])

    def ping(self) -> bool:
        return pg_startup_ping(self.host, self.port, timeout=1.0)

    def stop(self, *, cleanup: bool = False) -> None:
        """Fast shutdown (SIGINT: sessions are rolled back and disconnected);
        SIGKILL of the postmaster and its children after stop_timeout."""
        if self.proc is not None:
            self._signal_all(signal.SIGCONT)
            self._signal(signal.SIGINT)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
            self._reap()
        if cleanup:
            shutil.rmtree(self.dir, ignore_errors=True)

    def server_pids(self) -> list[int]:
        """The postmaster and its children (backends, checkpointer, ...). PostgreSQL
        puts each child in a process group of its own, so they are found by parent."""
        if self.proc is None or self.proc.poll() is not None:
            return []
        pids = [self.proc.pid]
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                raw = Path(f"/proc/{d}/stat").read_text()
            except OSError:
                continue
            fields = raw[raw.rindex(")") + 2:].split()
            if int(fields[1]) == self.proc.pid and fields[0] != "Z":
                pids.append(int(d))
        return pids

    def _signal_all(self, sig: int) -> list[int]:
        pids = self.server_pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        return pids

    def kill(self) -> None:
        """Abrupt death of the postmaster and every backend (SIGKILL to each)."""
        if self.proc is not None:
            pids = self._signal_all(signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(self.stop_timeout)
            self._reap()
            self._wait_gone(pids)

    @staticmethod
    def _wait_gone(pids: list[int], timeout: float = 5.0) -> None:
        """Wait until the killed processes are gone (or zombies), so a restart does not
        trip over 'pre-existing shared memory block is still in use'."""
        deadline = time.monotonic() + timeout
        for pid in pids:
            while time.monotonic() < deadline:
                try:
                    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                except (OSError, IndexError):
                    break
                if state in ("Z", "X"):
                    break
                time.sleep(0.02)

    def terminate_backends(self) -> int:
        """SIGTERM every client backend (as pg_terminate_backend does)."""
        return int(self.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ) or 0)

    @contextlib.contextmanager
    def frozen(self) -> Iterator[None]:
        """Postmaster and every backend stopped (SIGSTOP) inside the block: connects and
        queries hang."""
        pids = self._signal_all(signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGCONT)

    # -- addresses
    def dsn(self, user: str = PG_USER, password: str | None = None, db: str = PG_DB,
            **params: Any) -> str:
        """postgresql://user:pw@127.0.0.1:PORT/db[?k=v&...]; the password defaults to the
        user's own (known roles), and is left out when it is ''."""
        from urllib.parse import quote, urlencode

        pw = self.users.get(user, "") if password is None else password
        auth = quote(user, safe="") + (f":{quote(pw, safe='')}" if pw else "") + "@"
        query = f"?{urlencode(params)}" if params else ""
        return f"postgresql://{auth}{self.host}:{self.port}/{quote(db, safe='')}{query}"

    def url(self) -> str:
        return self.dsn()

    # -- helpers for tests (psql over the Unix socket as `postgres`: never iokernel)
    def psql_argv(self, db: str = PG_DB) -> list[str]:
        return [
            str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", self.socket_dir, "-p", str(self.port), "-U", "postgres", "-d", db,
        ]

    def sql(self, query: str, *, db: str = PG_DB, timeout: float = 30.0) -> str:
        """Run SQL (one or more statements) with psql; return its unaligned, tuples-only
        output (columns split by '|', rows by newlines), stripped. Raises PgError."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGAPPNAME"] = "iok-test-psql"
        proc = subprocess.run(
            [*self.psql_argv(db), "-c", query], capture_output=True, text=True,
            timeout=timeout, env=env, check=False,
        )
        if proc.returncode != 0:
            raise PgError(f"psql failed ({proc.returncode}) for {query!r}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def sql_rows(self, query: str, *, db: str = PG_DB) -> list[list[str]]:
        out = self.sql(query, db=db)
        return [line.split("|") for line in out.splitlines() if line]

    def connections(self, application_name: str | None = None) -> int:
        """Client backends connected (optionally only those with this application_name),
        not counting psql's own."""
        where = "backend_type = 'client backend' AND application_name <> 'iok-test-psql'"
        if application_name is not None:
            where += f" AND application_name = {_sql_literal(application_name)}"
        return int(self.sql(f"SELECT count(*) FROM pg_stat_activity WHERE {where}"))

    def terminate(self, application_name: str) -> int:
        """pg_terminate_backend() every backend with this application_name; returns how many."""
        out = self.sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE application_name = {_sql_literal(application_name)}"
        )
        return int(out or 0)

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = self.sql("SHOW server_version")
        return self._version


SERVER_KINDS: dict[str, type[ServerProcess]] = {"redis": RedisServer, "postgres": PostgresServer}


# ------------------------------------------------------------------------ CLI
def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, cmd = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(prog="python -m tests.servers", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=sorted(SERVER_KINDS))
    ap.add_argument("--port", type=int, default=None, help="default: a free port")
    ap.add_argument("--password", default=None)
    ap.add_argument("--env", action="append", default=[], metavar="NAME",
                    help="also export the URL as NAME (repeatable)")
    ap.add_argument("--reuse-env", action="store_true",
                    help="if the first --env variable is already set, use that server")
    ap.add_argument("--pidfile", default=None, help="without a command: write our pid here")
    args = ap.parse_args(argv)

    kind = SERVER_KINDS[args.kind]
    names = [getattr(kind, "env_name", "IOKERNEL_REDIS_URL"), *args.env]
    if args.reuse_env and cmd and args.env and os.environ.get(args.env[0]):
        url = os.environ[args.env[0]]
        print(f"[servers] using {args.env[0]}={url}", file=sys.stderr, flush=True)
        env = dict(os.environ)
        for n in names:
            env.setdefault(n, url)
        return subprocess.call(cmd, env=env)

    kwargs: dict[str, Any] = {"port": args.port}
    if args.password is not None:
        kwargs["password"] = args.password
    srv = kind(**kwargs)
    stop = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    try:
        srv.start()
        url = srv.url() if isinstance(srv, (RedisServer, PostgresServer)) else f"{srv.host}:{srv.port}"
        print(f"[servers] {args.kind} at {url} (pid {srv.pid}, dir {srv.dir})",
              file=sys.stderr, flush=True)
        if cmd:
            env = dict(os.environ)
            for n in names:
                env[n] = url
            child = subprocess.Popen(cmd, env=env)
            try:
                return child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
                try:
                    return child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    return 130
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        if args.pidfile:
            Path(args.pidfile).write_text(f"{os.getpid()}\n")
        print(url, flush=True)
        while not stop and srv.running:
            time.sleep(0.2)
        return 0 if stop else 1
    finally:
        srv.stop(cleanup=True)
        if args.pidfile and not cmd:
            with contextlib.suppress(OSError):
                Path(args.pidfile).unlink()


if __name__ == "__main__":
    sys.exit(_main())
