"""PostgreSQL roles with a real streaming standby (``pg_basebackup -R`` on
loopback, tests/servers/postgres_standby.py): a multi-host client's
``endpoints()`` shows the primary and the standby as the servers report
themselves (``in_hot_standby``, no extra query), a write reaching the
standby fails with SQLSTATE 25006 and keeps it a replica, and after
``pg_ctl promote`` the standby's existing connection learns it is a primary
from the parameter status the server sends with its next reply."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from iokernel import pg
from tests.servers.postgres_standby import PostgresStandby

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def standby(fresh_pg_server: Any) -> Iterator[PostgresStandby]:
    sb = PostgresStandby(fresh_pg_server)
    sb.start()
    try:
        sb.wait_streaming()
        yield sb
    finally:
        sb.stop(cleanup=True)


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
