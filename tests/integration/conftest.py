"""Fixtures for the PostgreSQL integration tests: ``db`` (each test runs
once per client kind), ``table`` (a fresh table per test) and ``standby``
(a streaming standby of a fresh primary, for the role tests)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from tests.integration.pg_driver import MODES, Driver, make, new_app
from tests.servers import PostgresServer
from tests.servers.postgres_standby import PostgresStandby


@pytest.fixture(params=MODES)
async def db(request: pytest.FixtureRequest, pg_server: PostgresServer,
             pg_dsn: str) -> AsyncIterator[Driver]:
    is_async = request.param == "async"
    app = new_app(request.param)
    client = make(pg_server.dsn(application_name=app), is_async, timeout=30.0)
    d = Driver(client, is_async, app)
    yield d
    await d.close()


@pytest.fixture
def table(pg_server: PostgresServer, pg_dsn: str) -> Iterator[str]:
    """A fresh table (id int primary key, v text, n int), dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    pg_server.sql(f"CREATE TABLE {name} (id int PRIMARY KEY, v text, n int)")
    yield name
    with contextlib.suppress(Exception):
        pg_server.sql(f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def standby(fresh_pg_server: Any) -> Iterator[PostgresStandby]:
    sb = PostgresStandby(fresh_pg_server)
    sb.start()
    try:
        sb.wait_streaming()
        yield sb
    finally:
        sb.stop(cleanup=True)
