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

Command line (used by the Makefile for `make demo` / `make bench`):

    python -m tests.servers redis [--password PW] [--env NAME]... [--reuse-env] [-- CMD ...]

With a command: start the server, export its URL as IOKERNEL_REDIS_URL (and every
--env NAME), run the command, stop the server, exit with the command's status.
With --reuse-env and the first --env variable already set, no server is started.
Without a command: print the URL, write --pidfile if asked, and serve until
SIGINT/SIGTERM.

To add a server kind (postgres, nginx, memcached): subclass ServerProcess,
implement command() and ping(), and register it in SERVER_KINDS.
"""

from __future__ import annotations

import argparse
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


SERVER_KINDS: dict[str, type[ServerProcess]] = {"redis": RedisServer}


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

    names = ["IOKERNEL_REDIS_URL", *args.env]
    if args.reuse_env and cmd and args.env and os.environ.get(args.env[0]):
        url = os.environ[args.env[0]]
        print(f"[servers] using {args.env[0]}={url}", file=sys.stderr, flush=True)
        env = dict(os.environ)
        for n in names:
            env.setdefault(n, url)
        return subprocess.call(cmd, env=env)

    kind = SERVER_KINDS[args.kind]
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
        url = srv.url() if isinstance(srv, RedisServer) else f"{srv.host}:{srv.port}"
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
