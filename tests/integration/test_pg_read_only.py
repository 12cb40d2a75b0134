"""libpq's read-write test with a real primary and streaming standby:
``target_session_attrs=read-write`` skips a server that is a hot standby
*or* read-only by default (``default_transaction_read_only=on``), while
``primary`` looks only at hot standby; ``read-only`` takes both kinds. Both
facts come from the servers' own ParameterStatus reports (PostgreSQL 14+),
and are kept current: ``ALTER SYSTEM SET default_transaction_read_only`` and
``pg_reload_conf()`` on the primary reach the open connections with their
next reply (health checks here), and traffic follows without reconnecting."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.servers.postgres_standby import PostgresStandby

pytestmark = pytest.mark.timeout(120)
PORT = "SELECT inet_server_port()"


def multi(primary: Any, standby: PostgresStandby, **params: str) -> str:
    return primary.dsn(**params).replace(
        f":{primary.port}/", f":{primary.port},{standby.host}:{standby.port}/")


def read_only_of(c: Any, port: int) -> Any:
    return next(e["read_only"] for e in c.endpoints() if e["address"].endswith(f":{port}"))


async def until_read_only(c: Any, port: int, want: bool) -> None:
    """Until the client's endpoint shows the server's report (bounded)."""
    end = time.monotonic() + 30
    while read_only_of(c, port) is not want:
        assert time.monotonic() < end, c.endpoints()
        await asyncio.sleep(0.05)


def set_read_only(primary: Any, on: bool) -> None:
    if on:
        primary.sql("ALTER SYSTEM SET default_transaction_read_only = on")
    else:
        primary.sql("ALTER SYSTEM RESET default_transaction_read_only")
    primary.sql("SELECT pg_reload_conf()")


async def test_read_write_skips_a_read_only_primary_and_follows_a_reload(
    fresh_pg_server: Any, standby: PostgresStandby
) -> None:
    primary = fresh_pg_server
    opts: dict[str, Any] = dict(connections=1, health_check_interval=0.2, timeout=10.0)
    rw = pg.AsyncClient(multi(primary, standby, target_session_attrs="read-write"), **opts)
    pr = pg.AsyncClient(multi(primary, standby, target_session_attrs="primary"), **opts)
    # The first fitting host in URL order (the primary is listed first).
    ro = pg.AsyncClient(multi(primary, standby, target_session_attrs="read-only",
                              load_balance_hosts="disable"), **opts)
    late = None
    try:
        for c in (rw, pr, ro):
            await c.ready(30)
        assert read_only_of(rw, primary.port) is False
        assert await rw.fetchval(PORT) == primary.port
        assert await ro.fetchval(PORT) == standby.port  # the primary is writable
        await rw.execute("CREATE TABLE rw_t (n int)")

        set_read_only(primary, True)
        for c in (rw, pr, ro):
            await until_read_only(c, primary.port, True)
        # read-write: neither server takes writes by default now.
        with pytest.raises(iokernel.ConnectionError) as ei:
            await rw.execute("INSERT INTO rw_t VALUES (1)")
        assert ei.value.reason == "no_endpoint" and "no endpoint fits" in str(ei.value)
        # primary: still the primary (it is not a hot standby).
        assert await pr.fetchval(PORT) == primary.port
        # read-only: the primary is read-only now, and first in the URL.
        assert await ro.fetchval(PORT) == primary.port
        # A client that connects now learns it from the startup report.
        late = pg.AsyncClient(multi(primary, standby, target_session_attrs="read-write"),
                              **opts)
        await late.ready(30)
        assert read_only_of(late, primary.port) is True
        with pytest.raises(iokernel.ConnectionError):
            await late.fetchval(PORT)

        set_read_only(primary, False)
        await until_read_only(rw, primary.port, False)
        await rw.execute("INSERT INTO rw_t VALUES (2)")
        assert await rw.fetchval(PORT) == primary.port
        await until_read_only(ro, primary.port, False)
        assert await ro.fetchval(PORT) == standby.port
        assert await pr.fetchval("SELECT array_agg(n) FROM rw_t") == [2]
    finally:
        for c in (rw, pr, ro, late):
            if c is not None:
                await c.close()
