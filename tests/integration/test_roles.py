"""Endpoint roles learned from the servers themselves and shown by
``client.endpoints()``: Redis from the ``role`` field of HELLO's reply at the handshake and from a
``READONLY`` reply later; PostgreSQL from the ``in_hot_standby`` parameter
status it reports at startup (PostgreSQL 14+)."""

from __future__ import annotations

from typing import Any

import pytest

from iokernel import pg, redis

pytestmark = pytest.mark.timeout(60)


def role(c: Any) -> str:
    (ep,) = c.endpoints()
    return str(ep["role"])


def test_redis_primary_and_replica_roles(redis_server: Any, fresh_redis_server: Any) -> None:
    primary = redis.Client(redis_server.url())
    replica_srv = fresh_redis_server
    primary.set(b"roles:k", b"v")
    assert role(primary) == "primary"
    seen = redis.Client(replica_srv.url(), health_check_interval=None)
    try:
        seen.set(b"roles:mine", b"1")
        assert role(seen) == "primary"  # until it is told otherwise
        # It becomes a replica while the client's connection stays up.
        replica_srv.command_raw("REPLICAOF", redis_server.host, str(redis_server.port))
        with pytest.raises(redis.ReadOnlyError):
            seen.set(b"roles:mine", b"2")
        assert role(seen) == "replica"  # learned from the READONLY reply
        fresh = redis.Client(replica_srv.url(), health_check_interval=None)
        try:
            fresh.ping()
            assert role(fresh) == "replica"  # learned from HELLO at the handshake
        finally:
            fresh.close()
    finally:
        replica_srv.command_raw("REPLICAOF", "NO", "ONE")
        seen.close()
        primary.close()


async def test_pg_primary_role(pg_dsn: str) -> None:
    db = pg.AsyncClient(pg_dsn)
    try:
        assert await db.fetchval("SELECT 1") == 1
        assert role(db) == "primary"  # in_hot_standby=off at startup
    finally:
        await db.close()
