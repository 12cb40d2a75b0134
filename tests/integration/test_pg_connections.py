"""PostgreSQL connections: application_name, sharing few connections, the auth
methods and wrong passwords, DSN escapes, unknown databases, connect and
query timeouts, dead, killed, restarted and frozen servers.

Bodies that take ``db`` run through the blocking and the asyncio client
(tests/integration/pg_driver.py); side effects are checked with psql
(``pg_server.sql``), never with the client under test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import iokernel
from tests.integration.pg_driver import MODES, Driver, drive, eventually, make, new_app, until
from tests.servers import (
    PG_MD5_PASSWORD,
    PG_MD5_USER,
    PG_PLAIN_PASSWORD,
    PG_PLAIN_USER,
    PG_USER,
    PostgresServer,
    dead_port,
)


def _running(srv: PostgresServer, app: str, call: str) -> int:
    """Queries of `app` that the server is executing and that contain `call`."""
    return int(srv.sql(
        "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
        f"AND application_name = '{app}' AND strpos(query, '{call}') > 0"
    ))


# --------------------------------------------------------------- connections
async def test_application_name_from_dsn(db: Driver, pg_server: PostgresServer) -> None:
    assert await db.fetchval("SELECT current_setting('application_name')") == db.app
    assert pg_server.connections(db.app) >= 1
    stats = db.client.stats()
    assert isinstance(stats, dict)
    assert stats["connections"] >= 1


async def test_fifty_tasks_share_few_connections(db: Driver, pg_server: PostgresServer) -> None:
    """50 concurrent callers are pipelined over a handful of connections."""
    seen: list[int] = []
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            seen.append(pg_server.connections(db.app))
            time.sleep(0.05)

    counter = threading.Thread(target=count)
    counter.start()
    try:
        def job(i: int) -> Callable[[], Awaitable[Any]]:
            async def run() -> Any:
                for j in range(40):
                    v = i * 1000 + j
                    assert await db.fetchval("SELECT $1::int + 1", v) == v + 1
                return True

            return run

        results = await db.concurrently([job(i) for i in range(50)])
        assert results == [True] * 50, [r for r in results if r is not True][:3]
    finally:
        stop.set()
        counter.join(10)
    seen.append(pg_server.connections(db.app))
    assert max(seen) <= 4, seen
    assert db.client.stats()["connections"] <= 4


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("user", "password"),
    [(PG_USER, None), (PG_MD5_USER, PG_MD5_PASSWORD), (PG_PLAIN_USER, PG_PLAIN_PASSWORD)],
    ids=["scram", "md5", "cleartext"],
)
async def test_auth_methods(pg_server: PostgresServer, pg_dsn: str, mode: str, user: str,
                            password: str | None) -> None:
    d = Driver(make(pg_server.dsn(user=user, password=password), mode == "async",
                    timeout=10.0), mode == "async")
    try:
        assert await d.fetchval("SELECT current_user") == user
        assert await d.fetchval("SELECT $1::text", "x") == "x"
    finally:
        await d.close()


@pytest.mark.parametrize("mode", MODES)
async def test_password_with_url_escapes(pg_server: PostgresServer, pg_dsn: str,
                                         mode: str) -> None:
    user, pw = "odd user", "p@ss:w/rd%?#&é"
    pg_server.sql(
        f"DROP ROLE IF EXISTS \"{user}\"; "
        f"CREATE ROLE \"{user}\" LOGIN PASSWORD '{pw}'"
    )
    d = Driver(make(pg_server.dsn(user=user, password=pw), mode == "async", timeout=10.0),
               mode == "async")
    try:
        assert await d.fetchval("SELECT current_user") == user
    finally:
        await d.close()


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("user", [PG_USER, PG_MD5_USER, PG_PLAIN_USER],
                         ids=["scram", "md5", "cleartext"])
async def test_wrong_password_is_a_connection_error_without_the_password(
    pg_server: PostgresServer, pg_dsn: str, mode: str, user: str
) -> None:
    secret = f"Wrong-{uuid.uuid4().hex}"
    d = Driver(make(pg_server.dsn(user=user, password=secret), mode == "async", timeout=5.0),
               mode == "async")
    try:
        t0 = time.monotonic()
        with pytest.raises(iokernel.ConnectionError) as ei:
            await d.fetchval("SELECT 1")
        assert time.monotonic() - t0 < 4, "an authentication failure must not wait for the timeout"
        e: BaseException | None = ei.value
        text = ""
        while e is not None:
            text += f"{e!s} {e!r} {e.args!r} "
            e = e.__cause__ or e.__context__
        assert secret not in text
        assert "password authentication failed" in text or "28P01" in text, text
        assert user in text, text
        # and again (the failure is remembered or retried, never hangs)
        with pytest.raises(iokernel.ConnectionError):
            await d.fetchval("SELECT 1")
    finally:
        await d.close()


@pytest.mark.parametrize("mode", MODES)
async def test_unknown_database_fails_clearly(pg_server: PostgresServer, pg_dsn: str,
                                              mode: str) -> None:
    d = Driver(make(pg_server.dsn(db="no_such_db"), mode == "async", timeout=5.0),
               mode == "async")
    try:
        t0 = time.monotonic()
        with pytest.raises(iokernel.Error) as ei:
            await d.fetchval("SELECT 1")
        assert time.monotonic() - t0 < 4
        assert "no_such_db" in str(ei.value)
    finally:
        await d.close()


@pytest.mark.parametrize("mode", MODES)
async def test_connect_timeout_from_dsn(mode: str) -> None:
    """A server that accepts TCP but never answers the startup packet: callers
    hear of it after connect_timeout, not after the (much longer) request timeout."""
    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        port = blackhole.getsockname()[1]
        dsn = f"postgresql://app:pw@127.0.0.1:{port}/app?connect_timeout=1"
        d = Driver(make(dsn, mode == "async", timeout=30.0), mode == "async")
        try:
            t0 = time.monotonic()
            with pytest.raises((iokernel.ConnectionError, iokernel.TimeoutError)):
                await d.fetchval("SELECT 1")
            elapsed = time.monotonic() - t0
            assert 0.5 < elapsed < 5, f"failed after {elapsed:.2f}s with connect_timeout=1"
        finally:
            await d.close()


@pytest.mark.parametrize("mode", MODES)
async def test_dead_server_fails_fast(mode: str) -> None:
    dsn = f"postgresql://app:pw@127.0.0.1:{dead_port()}/app?connect_timeout=2"
    d = Driver(make(dsn, mode == "async", timeout=30.0), mode == "async")
    try:
        t0 = time.monotonic()
        with pytest.raises(iokernel.ConnectionError):
            await d.fetchval("SELECT 1")
        with pytest.raises(iokernel.ConnectionError):
            await d.fetchval("SELECT 1")
        assert time.monotonic() - t0 < 5
    finally:
        await d.close()


async def test_timeout_is_enforced_and_client_recovers(db: Driver, pg_server: PostgresServer) -> None:
    d = Driver(make(pg_server.dsn(application_name=db.app + "-to"), db.is_async, timeout=0.5),
               db.is_async, db.app + "-to")
    try:
        # Connecting and the statement's first Describe may take longer than
        # 0.5 s on a loaded machine.
        assert await eventually(lambda: d.fetchval("SELECT 1"), within=10) == 1
        t0 = time.monotonic()
        with pytest.raises(iokernel.TimeoutError):
            await d.fetchval("SELECT pg_sleep(3)")
        assert time.monotonic() - t0 < 2.5  # the 0.5 s timeout, not the 3 s query
        assert await eventually(lambda: d.fetchval("SELECT $1::int", 5), within=10) == 5
        assert await d.fetchval("SELECT $1::int", 6) == 6
    finally:
        await d.close()


async def test_killed_backend_fails_in_flight_callers_then_reconnects(
    db: Driver, pg_server: PostgresServer
) -> None:
    assert await db.fetchval("SELECT 1") == 1
    pid_before = await db.fetchval("SELECT pg_backend_pid()")

    async def sleeper() -> Any:
        return await db.fetchval("SELECT pg_sleep(20)")

    async def run_and_kill() -> list[Any]:
        if db.is_async:
            tasks = [asyncio.ensure_future(sleeper()) for _ in range(5)]
        else:
            tasks = [asyncio.ensure_future(asyncio.to_thread(drive, sleeper()))
                     for _ in range(5)]
        # All five sent and the server running them, however late the tasks
        # (threads) got going: one sent after the kill would go to a new
        # backend and sleep its 20 s.
        await until(lambda: db.client.stats()["outstanding"] == 5, "all five are sent")
        await until(lambda: _running(pg_server, db.app, "pg_sleep(20)") >= 1,
                    "the server runs them")
        assert not any(t.done() for t in tasks)
        assert await asyncio.to_thread(pg_server.terminate, db.app) >= 1
        t0 = time.monotonic()
        _done, pending = await asyncio.wait(tasks, timeout=15)
        assert not pending, "in-flight callers not told of the killed backend"
        assert time.monotonic() - t0 < 10  # told, not left to their 20 s queries
        return [t.exception() for t in tasks]

    errors = await run_and_kill()
    assert all(isinstance(e, iokernel.ConnectionError) for e in errors), errors
    v = await eventually(lambda: db.fetchval("SELECT $1::int", 9), within=10,
                         retry_on=(iokernel.ConnectionError,))
    assert v == 9
    assert await db.fetchval("SELECT pg_backend_pid()") != pid_before
    assert pg_server.connections(db.app) >= 1


@pytest.mark.parametrize("mode", MODES)
async def test_server_restart_and_kill(fresh_pg_server: PostgresServer, mode: str) -> None:
    srv = fresh_pg_server
    app = new_app("restart")
    d = Driver(make(srv.dsn(application_name=app, connect_timeout=2), mode == "async",
                    timeout=20.0), mode == "async", app)
    try:
        assert await d.fetchval("SELECT 1") == 1
        srv.restart()
        assert await eventually(lambda: d.fetchval("SELECT 2"), within=10) == 2

        async def sleeper() -> Any:
            return await d.fetchval("SELECT pg_sleep(20)")

        task = (asyncio.ensure_future(sleeper()) if d.is_async
                else asyncio.ensure_future(asyncio.to_thread(drive, sleeper())))
        await until(lambda: d.client.stats()["outstanding"] == 1, "the query is sent")
        await until(lambda: _running(srv, app, "pg_sleep(20)") >= 1, "the server runs it")
        t0 = time.monotonic()
        await asyncio.to_thread(srv.kill)
        done, _ = await asyncio.wait([task], timeout=15)
        assert done, "an in-flight caller must hear of the dead server"
        assert isinstance(task.exception(), iokernel.ConnectionError), task.exception()
        assert time.monotonic() - t0 < 10  # told, not left to its 20 s query
        # while down: fast failures, not timeouts
        t0 = time.monotonic()
        with pytest.raises(iokernel.ConnectionError):
            await d.fetchval("SELECT 3")
        assert time.monotonic() - t0 < 5
        srv.restart()
        assert await eventually(lambda: d.fetchval("SELECT $1::int", 4), within=15) == 4
        assert await d.fetchval("SELECT current_setting('application_name')") == app
    finally:
        await d.close()


async def test_killed_transaction_backend(db: Driver, table: str,
                                          pg_server: PostgresServer) -> None:
    """The dedicated connection of a transaction dies mid-block: the block raises
    ConnectionError, nothing is committed, and the next transaction works."""
    with pytest.raises(iokernel.ConnectionError):
        async with db.transaction() as tx:
            await tx.execute(f"INSERT INTO {table} (id) VALUES (1)")
            pid = await tx.fetchval("SELECT pg_backend_pid()")
            assert pg_server.sql(f"SELECT pg_terminate_backend({pid})") == "t"
            await asyncio.sleep(0.2)
            await tx.fetchval("SELECT 1")
    assert pg_server.sql(f"SELECT count(*) FROM {table}") == "0"
    async with db.transaction() as tx:
        assert await tx.fetchval("SELECT pg_current_xact_id_if_assigned()") is None
        await tx.execute(f"INSERT INTO {table} (id) VALUES (2)")
    assert pg_server.sql(f"SELECT id FROM {table}") == "2"


@pytest.mark.parametrize("mode", MODES)
async def test_frozen_server_times_out_then_recovers(fresh_pg_server: PostgresServer,
                                                     mode: str) -> None:
    srv = fresh_pg_server
    d = Driver(make(srv.dsn(application_name=new_app("frozen")), mode == "async", timeout=0.5),
               mode == "async")
    try:
        assert await d.fetchval("SELECT 1") == 1
        with srv.frozen():
            t0 = time.monotonic()
            with pytest.raises((iokernel.TimeoutError, iokernel.ConnectionError)):
                await d.fetchval("SELECT 2")
            assert time.monotonic() - t0 < 5  # the 0.5 s timeout; frozen, it would hang
        got = await eventually(lambda: d.fetchval("SELECT $1::int", 3, timeout=5), within=15)
        assert got == 3
    finally:
        await d.close()
