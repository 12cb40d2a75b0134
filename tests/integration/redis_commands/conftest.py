"""Fixtures of the typed-command tests: ``url`` (the shared RESP3 server, and a
RESP2-only one: HELLO renamed away), ``r`` (a ``Driver`` per client kind on
that URL) and ``ref`` (redis-py on the same server, the independent witness).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis as redispy

from iokernel import redis
from tests.integration.redis_commands.driver import MODE_IDS, MODES, Driver, _close
from tests.servers import RedisServer


@pytest.fixture(scope="package")
def resp2_server() -> Iterator[RedisServer]:
    """A server without HELLO: the kernel falls back to RESP2 on it (one for this folder)."""
    srv = RedisServer(extra_config=['rename-command HELLO ""'])
    srv.start()
    try:
        yield srv
    finally:
        srv.stop(cleanup=True)


@pytest.fixture(params=["resp3", "resp2"])
def url(request: pytest.FixtureRequest, redis_url: str) -> str:
    """The shared server (flushed by conftest), or the RESP2-only one (flushed here)."""
    if request.param == "resp3":
        return redis_url
    srv: RedisServer = request.getfixturevalue("resp2_server")
    srv.flushall()
    return srv.url()


@pytest.fixture(params=MODES, ids=MODE_IDS)
async def r(request: pytest.FixtureRequest, url: str) -> AsyncIterator[Driver]:
    is_async, decode = request.param
    cls = redis.AsyncClient if is_async else redis.Client
    client = cls(url, decode_responses=decode, timeout=10)
    yield Driver(client, is_async, decode)
    await _close(client)


@pytest.fixture
def ref(url: str) -> Iterator[Any]:
    """redis-py on the same server: the independent witness of side effects."""
    client = redispy.Redis.from_url(url, protocol=2)
    yield client
    client.close()
