"""PostgresServer: a throw-away PostgreSQL cluster (initdb once per process,
copied per server), its roles and passwords, running as the postgres OS user
when we are root; psql helpers for tests (sql, connections, terminate) that
never go through iokernel.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from tests.servers.process import LOOPBACK, ServerError, ServerProcess, find_binary

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
            "local   replication all                   trust",
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
            conf.write("\n# iokernel test server (tests/servers)\n")
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
