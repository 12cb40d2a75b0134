"""A streaming standby of a test PostgreSQL server, on loopback: its data
directory is made by ``pg_basebackup -R`` from the primary (over the
primary's Unix socket, where the template's pg_hba.conf trusts replication),
so it follows the primary until ``promote()`` (``pg_ctl promote``) makes it
a primary of its own.

    with PostgresStandby(primary) as standby:      # started, streaming
        standby.dsn()                              # same users and password
        standby.promote()
"""

from __future__ import annotations

import os
import subprocess
import time

from tests.servers.postgres_server import PostgresServer, _as_pg_user, _chown_tree
from tests.servers.process import ServerError


class PostgresStandby(PostgresServer):
    def __init__(self, primary: PostgresServer) -> None:
        super().__init__(password=primary.password)
        self.primary = primary

    def _prepare(self) -> None:
        if (self.data_dir / "PG_VERSION").is_file():
            return
        _chown_tree(self.dir, self._ids)
        argv = [str(self.bindir / "pg_basebackup"), "-h", self.primary.socket_dir,
                "-p", str(self.primary.port), "-U", "postgres", "-D", str(self.data_dir),
                "-R", "-X", "stream", "--no-sync"]
        proc = subprocess.run(_as_pg_user(argv), capture_output=True, timeout=120, check=False)
        if proc.returncode != 0:
            raise ServerError(f"pg_basebackup failed (status {proc.returncode}): "
                              + proc.stderr.decode(errors="replace")[-2000:])
        os.chmod(self.data_dir, 0o700)

    def promote(self, timeout: float = 30.0) -> None:
        """``pg_ctl promote`` and wait until it accepts writes (pg_ctl waits)."""
        argv = [str(self.bindir / "pg_ctl"), "promote", "-w", "-t", str(int(timeout)),
                "-D", str(self.data_dir)]
        proc = subprocess.run(_as_pg_user(argv), capture_output=True, timeout=timeout + 5,
                              check=False)
        if proc.returncode != 0:
            raise ServerError(f"pg_ctl promote failed: {proc.stderr.decode(errors='replace')}")

    def wait_streaming(self, timeout: float = 30.0) -> None:
        """Until the primary lists this standby's WAL receiver as streaming."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            out = subprocess.run(
                _as_pg_user([str(self.bindir / "psql"), "-h", self.primary.socket_dir,
                             "-p", str(self.primary.port), "-U", "postgres", "-At", "-c",
                             "SELECT count(*) FROM pg_stat_replication WHERE state='streaming'",
                             "postgres"]),
                capture_output=True, timeout=10, check=False)
            if out.stdout.strip() not in (b"", b"0"):
                return
            time.sleep(0.1)
        raise ServerError("the standby did not start streaming")
