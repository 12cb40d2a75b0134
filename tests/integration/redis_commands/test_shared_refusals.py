"""What the shared connection refuses (MULTI, SUBSCRIBE, SELECT, ...: nothing is
sent), blocking commands sent with execute() moving to a connection of their
own, and ``dedicated()`` taking what the shared connection refuses (see
__init__.py).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis as redispy

from iokernel import redis
from iokernel._redis_commands import REFUSED_ON_SHARED
from tests.integration.redis_commands.driver import Driver, _close

# -- refusals --------------------------------------------------------------------

#: Blocking commands sent with execute() run on a connection of their own
#: (as the typed methods do); here each blocks 0.1 s on an empty key.
BLOCKING_CALLS: list[tuple[str, tuple[Any, ...], Any]] = [
    ("BLPOP", ("BLPOP", "l", 0.1), None),
    ("BRPOP", ("brpop", "l", "0.1"), None),
    ("BLMOVE", ("BLMOVE", "a", "b", "LEFT", "RIGHT", 0.1), None),
    ("BRPOPLPUSH", ("BRPOPLPUSH", "a", "b", 0.1), None),
    ("BZPOPMIN", ("BZPOPMIN", "z", 0.1), None),
    ("BZPOPMAX", ("BZPOPMAX", "z", 0.1), None),
    ("BLMPOP", ("BLMPOP", 0.1, 1, "l", "LEFT"), None),
    ("BZMPOP", ("BZMPOP", 0.1, 1, "z", "MIN"), None),
    ("WAIT", ("WAIT", 0, 100), 0),
    ("XREAD BLOCK", ("XREAD", "BLOCK", 100, "STREAMS", "s", "$"), None),
]


@pytest.mark.parametrize("name,args,expected", BLOCKING_CALLS,
                         ids=[n for n, _, _ in BLOCKING_CALLS])
async def test_blocking_commands_via_execute_get_their_own_connection(
    r: Driver, ref: Any, name: str, args: Any, expected: Any
) -> None:
    assert await r.execute(*args) == expected
    assert await r.execute("PING") == r.v("PONG")
    assert r.client.stats()["dedicated_connections"] <= 1


REFUSAL_CALLS: list[tuple[str, tuple[Any, ...]]] = [
    ("MULTI", ("MULTI",)),
    ("EXEC", ("EXEC",)),
    ("DISCARD", ("DISCARD",)),
    ("WATCH", ("WATCH", "k")),
    ("UNWATCH", ("UNWATCH",)),
    ("SUBSCRIBE", ("SUBSCRIBE", "ch")),
    ("PSUBSCRIBE", ("PSUBSCRIBE", "ch*")),
    ("SSUBSCRIBE", ("SSUBSCRIBE", "ch")),
    ("UNSUBSCRIBE", ("UNSUBSCRIBE",)),
    ("PUNSUBSCRIBE", ("PUNSUBSCRIBE",)),
    ("MONITOR", ("MONITOR",)),
    ("SELECT", ("SELECT", 2)),
    ("QUIT", ("QUIT",)),
    ("RESET", ("RESET",)),
    ("CLIENT REPLY", ("CLIENT", "REPLY", "OFF")),
    ("CLIENT TRACKING", (b"client", b"tracking", b"on")),
    ("HELLO", ("HELLO", 2)),
    ("AUTH", ("AUTH", "user", "pw")),
]


@pytest.mark.parametrize("name,args", REFUSAL_CALLS, ids=[n for n, _ in REFUSAL_CALLS])
async def test_refused_on_shared_connection(r: Driver, ref: Any, name: str, args: Any) -> None:
    with pytest.raises(Exception) as excinfo:
        await r.execute(*args)
    assert str(excinfo.value).find(REFUSED_ON_SHARED[name]) >= 0, str(excinfo.value)
    # Nothing was sent: the connection still works, in database 0, with replies on.
    assert await r.set("after", "ok") is True
    assert await r.get("after") == r.v("ok")
    assert ref.get("after") == b"ok"
    assert await r.execute("PING") == r.v("PONG")


async def test_dedicated_connection_takes_what_shared_refuses(
    r: Driver, ref: Any, url: str
) -> None:
    """The advice in the refusals works: blocking pops, WATCH/MULTI/EXEC and
    SELECT run on ``client.dedicated()``, and leave the shared connection alone."""
    ref.rpush("q", "a")
    async with r.dedicated() as d:
        assert await d.execute("BLPOP", "q", 1) == r.vs("q", "a")
        assert await d.execute("WATCH", "w") == r.v("OK")
        assert await d.execute("MULTI") == r.v("OK")
        assert await d.execute("SET", "w", "1") == r.v("QUEUED")
        assert await d.execute("EXEC") == [r.v("OK")]
        assert await d.execute("SELECT", 3) == r.v("OK")
        assert await d.set("in3", "x") is True
    assert ref.get("w") == b"1" and ref.exists("in3") == 0
    db3 = redispy.Redis.from_url(url.rsplit("/", 1)[0] + "/3", protocol=2)
    try:
        assert db3.get("in3") == b"x"
    finally:
        db3.close()
    assert await r.set("in0", "y") is True
    assert ref.get("in0") == b"y"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_blocking_pop_on_dedicated_outlasts_command_timeout(
    is_async: bool, redis_url: str
) -> None:
    cls = redis.AsyncClient if is_async else redis.Client
    r = Driver(cls(redis_url, timeout=0.3), is_async, False)
    try:
        started = time.monotonic()
        assert await r.blpop("empty", timeout=0.8) is None  # routed to a dedicated connection
        assert time.monotonic() - started >= 0.75
        async with r.dedicated() as d:
            assert await d.blpop("empty", timeout=0.8) is None
    finally:
        await _close(r.client)


async def test_xread_with_block_gets_its_own_connection(r: Driver, ref: Any) -> None:
    ref.xgroup_create("s", "g", id="0", mkstream=True)
    for args in [
        ("XREAD", "BLOCK", 100, "STREAMS", "s", "$"),
        ("XREAD", "COUNT", 1, "block", 100, "STREAMS", "s", "$"),
        ("XREADGROUP", "GROUP", "g", "c", "BLOCK", 100, "STREAMS", "s", ">"),
    ]:
        assert await r.execute(*args) is None  # blocked 0.1 s on its own connection
    # ... but not inside a pipeline, which shares the connection
    with pytest.raises(Exception, match="BLOCK blocks the connection"):
        r.client.pipeline().execute_command("XREAD", "BLOCK", 0, "STREAMS", "s", "$")
    ref.xadd("block", {"f": "v"}, id="1-1")
    # without BLOCK it is an ordinary command, even on a stream named "block"
    got = await r.execute("XREAD", "COUNT", 1, "STREAMS", "block", "0")
    assert got is not None and len(got) == 1
    assert await r.execute("XREAD", "STREAMS", "missing", "0") is None
    ref.xgroup_create("block", "BLOCK", id="0")
    got = await r.execute("XREADGROUP", "GROUP", "BLOCK", "BLOCK", "STREAMS", "block", ">")
    assert got is not None
