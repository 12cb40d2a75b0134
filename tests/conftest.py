"""Shared pytest fixtures: real servers on loopback, fault servers, leak checks.

Fixtures (all servers bind 127.0.0.1 on a free port; nothing needs to be running):

  redis_server         session   RedisServer (tests/servers); TCP + unix socket
  redis_url            function  redis_server.url() -> "redis://127.0.0.1:PORT/0"
  redis_auth_server    session   RedisServer with requirepass AUTH_PASSWORD and the
                                 ACL user AUTH_USER / AUTH_USER_PASSWORD
  fresh_redis_server   function  a private RedisServer for tests that kill/restart/freeze it
  fake_redis           function  FakeRedis (tests/faults/fakeserver.py), behaving normally
                                 until scripted
  no_leaks             function  fails the test if it leaves Python threads, native
                                 threads or file descriptors behind
  pg_server            session   PostgresServer (tests/servers): roles app (SCRAM,
                                 superuser), md5user (md5), plainuser (cleartext)
  pg_dsn               function  pg_server.dsn() -> "postgresql://app:PW@127.0.0.1:PORT/app"
  fresh_pg_server      function  a private PostgresServer for tests that kill/restart it

Every test that uses redis_server or redis_url starts on an empty server
(FLUSHALL over a raw socket before the test; iokernel is not involved).
"""

from __future__ import annotations

import faulthandler
import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.faults.fakeserver import FakeRedis
from tests.servers import PostgresServer, RedisServer, ServerError, find_binary, pg_bindir

AUTH_PASSWORD = "iok-default-pw"
AUTH_USER = "iokuser"
AUTH_USER_PASSWORD = "iokuser-pw"

_REDIS_FIXTURES = {"redis_server", "redis_url"}


def pytest_report_header(config: pytest.Config) -> list[str]:
    try:
        out = subprocess.run(
            [find_binary("redis-server"), "--version"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
    except (ServerError, OSError, subprocess.TimeoutExpired) as e:
        out = f"unavailable ({e})"
    try:
        pg = subprocess.run(
            [str(pg_bindir() / "postgres"), "--version"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.strip()
    except (ServerError, OSError, subprocess.TimeoutExpired) as e:
        pg = f"unavailable ({e})"
    return [f"redis-server: {out}", f"postgres: {pg}"]


# ------------------------------------------------------- hard time limit
# pytest-timeout (signal method) interrupts a test only when the main thread
# gets back to Python. A hang inside native code that never checks signals
# (or a GIL deadlock) would stall the whole run until CI's limit. So each test
# also arms faulthandler's C-level watchdog: HARD_GRACE seconds after the
# pytest-timeout limit it prints every thread's stack and exits the process.
HARD_GRACE = float(os.environ.get("IOK_TEST_HARD_GRACE", "60"))
DEFAULT_TIMEOUT = 120.0


def _timeout_of(item: pytest.Item) -> float:
    marker = item.get_closest_marker("timeout")
    if marker is not None:
        value = marker.args[0] if marker.args else marker.kwargs.get("timeout")
        if value is not None:
            return float(value)
    for name in ("timeout", "ini:timeout"):
        try:
            if name.startswith("ini:"):
                value = item.config.getini(name[4:])
            else:
                value = item.config.getoption(name)
        except (ValueError, KeyError):
            continue
        if value not in (None, ""):
            return float(value)
    return DEFAULT_TIMEOUT


_watchdog_out: Any = None


def pytest_configure(config: pytest.Config) -> None:
    # The stacks must reach the real stderr, not pytest's capture file (which
    # is lost when the process exits): dup fd 2 with capture suspended.
    global _watchdog_out
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=False)
    try:
        _watchdog_out = os.fdopen(os.dup(2), "w")
    finally:
        if capman is not None:
            capman.resume_global_capture()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    limit = _timeout_of(item)
    if limit > 0 and _watchdog_out is not None:
        faulthandler.dump_traceback_later(
            limit + HARD_GRACE, exit=True, file=_watchdog_out
        )
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


# ---------------------------------------------------------------- servers
S = TypeVar("S", RedisServer, PostgresServer)


@contextmanager
def _serving(make: Callable[[], S], what: str) -> Iterator[S]:
    """A server of the tests' own, started, stopped and removed afterwards; a
    server that cannot be set up or started fails the test, saying why."""
    try:
        srv = make()
    except ServerError as e:
        pytest.fail(f"could not set up {what} for the tests: {e}", pytrace=False)
    try:
        srv.start()
    except ServerError as e:
        srv.stop(cleanup=True)
        pytest.fail(f"could not start {what} for the tests: {e}", pytrace=False)
    try:
        yield srv
    finally:
        srv.stop(cleanup=True)


# ------------------------------------------------------------------ redis
@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with _serving(RedisServer, "redis-server") as srv:
        yield srv


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url()


@pytest.fixture(scope="session")
def redis_auth_server() -> Iterator[RedisServer]:
    def make() -> RedisServer:
        return RedisServer(password=AUTH_PASSWORD, acl_users={AUTH_USER: AUTH_USER_PASSWORD})

    with _serving(make, "redis-server") as srv:
        yield srv


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A server of this test's own: kill(), restart(), frozen() freely."""
    with _serving(RedisServer, "redis-server") as srv:
        yield srv


@pytest.fixture(autouse=True)
def _redis_clean_slate(request: pytest.FixtureRequest) -> None:
    """FLUSHALL before each test that uses the shared redis server (only those)."""
    if not _REDIS_FIXTURES.intersection(request.fixturenames):
        return
    srv: RedisServer = request.getfixturevalue("redis_server")
    if not srv.running:  # a test killed the shared server: bring it back, same port
        srv.restart()
    srv.flushall()


# --------------------------------------------------------------- postgres
@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    with _serving(PostgresServer, "PostgreSQL") as srv:
        yield srv


@pytest.fixture
def pg_dsn(pg_server: PostgresServer) -> str:
    if not pg_server.running:  # a test killed the shared server: bring it back, same port
        pg_server.restart()
    return pg_server.dsn()


@pytest.fixture
def fresh_pg_server() -> Iterator[PostgresServer]:
    """A cluster of this test's own: kill(), restart(), frozen(), terminate() freely."""
    with _serving(PostgresServer, "PostgreSQL") as srv:
        yield srv


# ------------------------------------------------------------ fault server
@pytest.fixture
def fake_redis() -> Iterator[FakeRedis]:
    with FakeRedis() as srv:
        yield srv


# ------------------------------------------------------------- leak check
def _fds() -> set[int]:
    try:
        listed = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        return set()
    # drop the directory fd listdir itself used (closed by now)
    return {fd for fd in listed if os.path.lexists(f"/proc/self/fd/{fd}")}


def _native_threads() -> dict[int, str]:
    out: dict[int, str] = {}
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                out[int(tid)] = Path(f"/proc/self/task/{tid}/comm").read_text().strip()
            except OSError:
                pass
    except OSError:
        pass
    return out


def _fd_desc(fd: int) -> str:
    try:
        return f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}"
    except OSError:
        return str(fd)


class LeakCheck:
    """Snapshot taken before the test; verify() waits (bounded) for things to settle.

    The kernel thread ("iokernel") and its own fds exist for the life of the
    process: the no_leaks fixture starts the kernel once before the first
    snapshot. One new eventfd is tolerated: iokernel caches the completer
    (an eventfd) of the last event loop that used it. fd_slack lets a test
    tolerate more long-lived fds it knows about.
    """

    # The kernel thread closes what a test let go of on its own time; a busy
    # machine delays that, not a leak. The check ends as soon as all is gone.
    settle_timeout = 15.0

    def __init__(self) -> None:
        self.fd_slack = 0
        self.threads = {t.ident for t in threading.enumerate()}
        self.native = _native_threads()
        self.fds = _fds()

    def _problems(self) -> list[str]:
        problems = []
        new_py = [
            t for t in threading.enumerate()
            if t.ident not in self.threads and t.is_alive()
        ]
        if new_py:
            problems.append(f"python threads left running: {[t.name for t in new_py]}")
        native_now = _native_threads()
        new_native = {
            tid: name for tid, name in native_now.items()
            if tid not in self.native and not name.startswith("iokernel")
        }
        # Python threads show up natively too; count only the ones Python doesn't know.
        py_native = {t.native_id for t in threading.enumerate()}
        new_native = {t: n for t, n in new_native.items() if t not in py_native}
        if new_native:
            problems.append(f"native threads left running: {sorted(new_native.values())}")
        new_fds = _fds() - self.fds
        eventfds = [fd for fd in new_fds if _fd_desc(fd).endswith("anon_inode:[eventfd]")]
        if eventfds:
            new_fds.discard(eventfds[0])  # the cached completer of the last loop
        if len(new_fds) > self.fd_slack:
            problems.append(
                f"{len(new_fds)} new file descriptors (slack {self.fd_slack}): "
                + ", ".join(_fd_desc(fd) for fd in sorted(new_fds))
            )
        return problems

    def verify(self) -> None:
        deadline = time.monotonic() + self.settle_timeout
        while True:
            gc.collect()
            problems = self._problems()
            if not problems or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if problems:
            pytest.fail("resource leak: " + "; ".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def _iokernel_started() -> None:
    """Start the kernel thread once (it lives as long as the process)."""
    try:
        from iokernel import redis
    except ImportError:  # infrastructure self-tests run without the library
        return
    with FakeRedis() as srv:
        client = redis.Client(srv.url(), timeout=5.0)
        client.execute("PING")
        client.close()


@pytest.fixture
def no_leaks(_iokernel_started: None) -> Iterator[LeakCheck]:
    """Request it to fail the test on leftover threads / fds. Request it FIRST so
    its snapshot precedes the other fixtures' resources (servers, clients)."""
    gc.collect()
    check = LeakCheck()
    yield check
    check.verify()
