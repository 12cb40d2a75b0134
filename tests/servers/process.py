"""The generic part of a test server: a binary run as a child process on a
free loopback port, with its own temporary directory, a bounded start (poll
ping() until it answers), stop (SIGTERM, then SIGKILL), kill, restart on the
same port, and freeze (SIGSTOP/SIGCONT). Also free_port/dead_port,
find_binary and cpus_kept_awake. RedisServer and PostgresServer subclass
ServerProcess.
"""

from __future__ import annotations

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

from tests.servers.resp import RespError

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


def free_port_on_all(hosts: Sequence[str], attempts: int = 20) -> int:
    """A TCP port free on every one of `hosts` right now (loopback
    addresses such as 127.0.0.2, 127.0.0.3: servers "of one name" that
    differ only by address, as replicas behind DNS do)."""
    for _ in range(attempts):
        port = free_port(hosts[0])
        ok = True
        for h in hosts[1:]:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise ServerError(f"no port free on all of {list(hosts)} after {attempts} tries")


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



@contextlib.contextmanager
def cpus_kept_awake(n: int = 2) -> Iterator[None]:
    """N busy loops at nice 19 for the duration. On a virtual machine an idle
    vCPU halts and waking it costs tens of µs to ms; kept busy by loops that
    take only CPU time nothing else wants, every thread wakes at the same
    cost whatever its share of the work (tests/integration/test_balance.py,
    bench/harness.py --keep-awake)."""
    procs = [subprocess.Popen(["nice", "-n", "19", sys.executable, "-c", "while True: pass"])
             for _ in range(max(0, n))]
    try:
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


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
