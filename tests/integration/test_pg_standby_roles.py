"""PostgreSQL roles with a real streaming standby (``pg_basebackup -R`` on
loopback, tests/servers/postgres_standby.py): a multi-host client's
``endpoints()`` shows the primary and the standby as the servers report
themselves (``in_hot_standby``, no extra query), a write reaching the
standby fails with SQLSTATE 25006 and keeps it a replica, and after
``pg_ctl promote`` the standby's existing connection learns it is a primary
from the parameter status the server sends with its next reply."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

import iokernel
from iokernel import pg
from tests.servers.postgres_standby import PostgresStandby

pytestmark = pytest.mark.timeout(120)


def roles(c: Any) -> dict[int, str]:
    return {int(e["address"].rsplit(":", 1)[1]): e["role"] for e in c.endpoints()}


async def test_standby_is_a_replica_until_promoted(fresh_pg_server: Any,
                                                   standby: PostgresStandby) -> None:
    primary = fresh_pg_server
    both = primary.dsn().replace(f":{primary.port}/",
                                 f":{primary.port},{standby.host}:{standby.port}/")
    multi = pg.AsyncClient(both, connections=1)
    on_standby = pg.AsyncClient(standby.dsn(), connections=1, health_check_interval=None)
    try:
        await multi.ready(30)
        assert roles(multi) == {primary.port: "primary", standby.port: "replica"}
        assert await on_standby.fetchval("SELECT pg_is_in_recovery()") is True
        assert roles(on_standby) == {standby.port: "replica"}
        with pytest.raises(pg.PostgresError) as e:
            await on_standby.execute("CREATE TABLE nope (n int)")
        assert e.value.sqlstate == "25006"
        assert roles(on_standby) == {standby.port: "replica"}

        standby.promote()
        # The same connection: the server reports in_hot_standby=off with
        # the reply to its next query.
        assert await on_standby.fetchval("SELECT pg_is_in_recovery()") is False
        assert roles(on_standby) == {standby.port: "primary"}
        await on_standby.execute("CREATE TABLE yes (n int)")
    finally:
        await multi.close()
        await on_standby.close()


PORT = "SELECT inet_server_port()"


def multi_dsn(primary: Any, standby: PostgresStandby, attrs: str) -> str:
    return primary.dsn(target_session_attrs=attrs).replace(
        f":{primary.port}/", f":{primary.port},{standby.host}:{standby.port}/")


async def test_target_session_attrs_route_by_role(fresh_pg_server: Any,
                                                  standby: PostgresStandby) -> None:
    primary = fresh_pg_server
    rw = pg.AsyncClient(multi_dsn(primary, standby, "read-write"), connections=1)
    ro = pg.AsyncClient(multi_dsn(primary, standby, "read-only"), connections=1)
    ps = pg.AsyncClient(multi_dsn(primary, standby, "prefer-standby"), connections=1,
                        idempotent=True)
    try:
        for c in (rw, ro, ps):
            await c.ready(30)
        for _ in range(6):
            assert await rw.fetchval(PORT) == primary.port
            assert await ro.fetchval(PORT) == standby.port
            assert await ps.fetchval(PORT) == standby.port
        async with rw.transaction() as tx:  # dedicated connections follow the rule too
            assert await tx.fetchval(PORT) == primary.port
        # No standby any more: prefer-standby reads go to the primary, and
        # the caller sees no error.
        standby.stop()
        for _ in range(6):
            assert await ps.fetchval(PORT) == primary.port
    finally:
        for c in (rw, ro, ps):
            await c.close()


async def test_writes_move_to_the_promoted_standby(fresh_pg_server: Any,
                                                   standby: PostgresStandby) -> None:
    primary = fresh_pg_server
    rw = pg.AsyncClient(multi_dsn(primary, standby, "read-write"), connections=1,
                        health_check_interval=0.2, timeout=5.0)
    try:
        await rw.ready(30)
        await rw.execute("CREATE TABLE moved (n int)")
        await rw.execute("INSERT INTO moved VALUES (1)")
        assert await rw.fetchval(PORT) == primary.port
        primary.stop()
        standby.promote()
        promoted = time.monotonic()
        errors: list[BaseException] = []
        while True:
            try:
                await rw.execute("INSERT INTO moved VALUES (2)")
                break
            except (iokernel.ConnectionError, pg.PostgresError) as e:
                errors.append(e)
            assert time.monotonic() - promoted < 20, errors[-3:]
            await asyncio.sleep(0.05)
        took = time.monotonic() - promoted
        print(f"\nwrites resumed {took:.2f}s after promotion; {len(errors)} errors meanwhile")
        assert await rw.fetchval(PORT) == standby.port
        assert await rw.fetchval("SELECT count(*) FROM moved") >= 2
        assert all(isinstance(e, iokernel.Error) for e in errors)
    finally:
        await rw.close()
