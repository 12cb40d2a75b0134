"""Redis 7 functions, read-only scripts, PUBLISH and PUBSUB introspection,
WAIT, SWAPDB, REPLICAOF NO ONE; and the connection-state commands (SELECT,
AUTH, HELLO, QUIT, RESET, CLIENT REPLY/TRACKING) as typed methods: refused
on the shared connection with the message ``execute()`` gives, run on
``dedicated()``. Side effects are read with redis-py (``ref``).
"""

from __future__ import annotations

from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver

LIB = """#!lua name=ioklib
redis.register_function('iok_set', function(keys, args) return redis.call('SET', keys[1], args[1]) end)
redis.register_function{function_name='iok_get', callback=function(keys) return redis.call('GET', keys[1]) end,
  flags={'no-writes'}}
"""


async def test_functions(r: Driver, ref: Any) -> None:
    ref.function_flush()
    assert await r.function_load(LIB) == r.v("ioklib")
    with pytest.raises(redis.ResponseError, match="already exists"):
        await r.function_load(LIB)
    assert await r.function_load(LIB, replace=True) == r.v("ioklib")
    assert await r.fcall("iok_set", 1, "k", "v") == r.v("OK")
    assert ref.get("k") == b"v"
    assert await r.fcall_ro("iok_get", 1, "k") == r.v("v")
    with pytest.raises(redis.ResponseError):
        await r.fcall_ro("iok_set", 1, "k", "w")  # a write in a read-only call
    listed = await r.function_list()
    assert len(listed) == 1 and "ioklib" in repr(listed)
    assert "iok_get" in repr(await r.function_list(library="iok*", withcode=True))
    payload = await r.function_dump()
    assert isinstance(payload, bytes) and payload == ref.function_dump()
    assert await r.function_delete("ioklib") is True
    assert ref.function_list() == []
    assert await r.function_restore(payload) is True
    assert len(ref.function_list()) == 1
    stats = await r.function_stats()
    assert stats and "engines" in repr(stats)
    with pytest.raises(redis.ResponseError, match="NOTBUSY"):
        await r.function_kill()
    assert await r.function_flush() is True
    assert ref.function_list() == []


async def test_function_dump_in_a_decoding_pipeline(r: Driver, ref: Any) -> None:
    ref.function_flush()
    ref.function_load(LIB)
    p = r.pipeline()
    p.function_dump().fcall("iok_set", 1, "k", "\u00e9")
    assert await p.execute() == [ref.function_dump(), r.v("OK")]
    ref.function_flush()


async def test_read_only_scripts(r: Driver, ref: Any) -> None:
    ref.set("k", "v")
    assert await r.eval_ro("return redis.call('GET', KEYS[1])", 1, "k") == r.v("v")
    sha = ref.script_load("return redis.call('GET', KEYS[1])")
    assert await r.evalsha_ro(sha, 1, "k") == r.v("v")
    with pytest.raises(redis.ResponseError):
        await r.eval_ro("return redis.call('SET', KEYS[1], 'x')", 1, "k")
    assert ref.get("k") == b"v"
    with pytest.raises(redis.ResponseError, match="NOTBUSY"):
        await r.script_kill()


async def test_publish_and_pubsub_introspection(r: Driver, ref: Any) -> None:
    sub = ref.pubsub()
    sub.subscribe("ch1")
    sub.psubscribe("c*")
    assert sub.get_message(timeout=10)["type"] == "subscribe"
    assert sub.get_message(timeout=10)["type"] == "psubscribe"
    try:
        assert await r.publish("ch1", "hello") == 2  # the channel and the pattern
        assert sub.get_message(timeout=10)["data"] == b"hello"
        assert await r.spublish("ch1", "x") == 0
        assert await r.pubsub_channels() == [r.v("ch1")]
        assert await r.pubsub_channels("nope*") == []
        assert await r.pubsub_numpat() == 1
        assert await r.pubsub_numsub("ch1", "ch2") == [(r.v("ch1"), 1), (r.v("ch2"), 0)]
        assert await r.pubsub_shardchannels() == []
        assert await r.pubsub_shardnumsub("s1") == [(r.v("s1"), 0)]
    finally:
        sub.close()
    with pytest.raises(redis.PubSubError, match="not supported yet"):
        r.client.pubsub()
    with pytest.raises(redis.ResponseError, match="MONITOR"):
        r.client.monitor()


async def test_wait_swapdb_replicaof(r: Driver, ref: Any, url: str) -> None:
    assert await r.wait(0, 1000) == 0  # no replicas: at once
    ref.set("in0", "a")
    try:
        assert await r.swapdb(0, 9) is True
        assert ref.get("in0") is None
        other = redis.Client(url[: url.rindex("/")] + "/9")
        assert other.get("in0") == b"a"
        other.close()
    finally:
        ref.swapdb(0, 9)
    assert ref.get("in0") == b"a"
    assert await r.replicaof("NO", "ONE") == r.v("OK")  # already a master: no change
    assert await r.slaveof() is True
    assert ref.info("replication")["role"] == "master"


STATEFUL = [
    ("select", (2,), "SELECT changes the database"),
    ("auth", ("pw",), "AUTH"),
    ("hello", (), "HELLO renegotiates"),
    ("quit", (), "QUIT would close"),
    ("reset", (), "RESET would wipe"),
    ("client_reply", ("OFF",), "CLIENT REPLY"),
    ("client_tracking_on", (), "CLIENT TRACKING"),
    ("client_tracking_off", (), "CLIENT TRACKING"),
]


@pytest.mark.parametrize(("method", "args", "match"), STATEFUL, ids=[m for m, _, _ in STATEFUL])
async def test_stateful_commands_refused_on_the_shared_connection(
    r: Driver, ref: Any, method: str, args: tuple[Any, ...], match: str
) -> None:
    with pytest.raises(redis.ResponseError, match=match) as e:
        getattr(r.client, method)(*args)
    assert str(e.value) == str(_execute_refusal(r, method, args))
    p = r.client.pipeline()
    with pytest.raises(redis.ResponseError, match=match):
        getattr(p, method)(*args) if method != "reset" else p.execute_command("RESET")
    # Nothing was sent: the shared connection is as it was.
    assert await r.set("after", "ok") is True
    assert ref.get("after") == b"ok"


def _execute_refusal(r: Driver, method: str, args: tuple[Any, ...]) -> Exception:
    words = {"client_tracking_on": ("CLIENT", "TRACKING", "ON"),
             "client_tracking_off": ("CLIENT", "TRACKING", "OFF"),
             "client_reply": ("CLIENT", "REPLY", *args)}.get(method, (method.upper(), *args))
    try:
        r.client.execute(*words)
    except redis.ResponseError as e:
        return e
    raise AssertionError("execute() did not refuse")


async def test_stateful_commands_run_on_a_dedicated_connection(r: Driver, ref: Any) -> None:
    async with r.dedicated() as d:
        assert await d.select(3) is True
        assert await d.set("in3", "v") is True
        try:
            hello = await d.hello()
        except redis.ResponseError as e:  # the RESP2-only server has no HELLO
            assert "unknown command" in str(e)
        else:
            assert isinstance(hello, (dict, list)) and "proto" in repr(hello)
    assert ref.get("in3") is None and await r.get("in3") is None
    with pytest.raises(redis.DataError):
        r.client.client_tracking_on(prefix=["x"])  # prefix needs bcast, checked first
    with pytest.raises(redis.DataError):
        r.client.client_reply("MAYBE")


def test_select_inside_a_watching_pipeline(redis_url: str) -> None:
    """A pipeline after watch() has its own connection: SELECT runs there."""
    with redis.Client(redis_url) as c, c.pipeline() as p:
        p.watch("k")
        assert p.select(4) is True
        assert p.set("k4", "v") is True  # at once, on the pipeline's connection
        assert c.get("k4") is None  # the shared connection stays in database 0
    with redis.Client(redis_url[: redis_url.rindex("/")] + "/4") as c4:
        assert c4.get("k4") == b"v"
        c4.flushdb()
