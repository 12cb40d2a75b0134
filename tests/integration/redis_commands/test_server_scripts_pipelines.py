"""Scripting (EVAL, the script cache, registered scripts), server and connection
commands, and typed methods in pipelines and transactions, through both
clients (see __init__.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver

# -- scripting -------------------------------------------------------------------


async def test_eval_and_script_cache(r: Driver, ref: Any) -> None:
    assert await r.script_flush() is True
    assert await r.eval("return {KEYS[1], ARGV[1], 7}", 1, "k", "a") == [r.v("k"), r.v("a"), 7]
    assert await r.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "k", "v") == r.v("OK")
    assert ref.get("k") == b"v"
    sha = await r.script_load("return ARGV[1] .. ARGV[2]")
    assert isinstance(sha, str) and len(sha) == 40
    assert await r.evalsha(sha, 0, "x", "y") == r.v("xy")
    assert await r.script_exists(sha, "0" * 40) == [True, False]
    assert await r.script_flush("SYNC") is True
    assert await r.script_exists(sha) == [False]
    with pytest.raises(redis.ResponseError, match="NOSCRIPT"):
        await r.evalsha(sha, 0)
    assert await r.script_flush("ASYNC") is True
    with pytest.raises(redis.ResponseError, match="boom"):
        await r.eval("return redis.error_reply('ERR boom')", 0)


async def test_registered_script(r: Driver, ref: Any) -> None:
    script = r.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    ref.script_flush()
    assert await r.script_exists(script.sha) == [False]
    assert await script(["n"], [5]) == 5  # NOSCRIPT, then EVAL
    assert await r.script_exists(script.sha) == [True]
    assert await script(keys=["n"], args=[2]) == 7  # EVALSHA
    failing = r.register_script("return redis.call('INCR', KEYS[1])")
    ref.set("s", "text")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        await failing(["s"])
    ref.script_flush()
    p = r.pipeline(transaction=False)
    queued = script(["n"], [10], client=p.pipe)
    assert await queued is p.pipe
    p.get("n")
    assert await p.execute() == [17, r.v("17")]


# -- server and connection -------------------------------------------------------


async def test_server_commands(r: Driver, ref: Any) -> None:
    assert await r.ping() is True
    assert await r.echo("héllo") == r.v("héllo")
    assert await r.echo(b"") == r.v(b"")
    info = await r.info()
    assert info["redis_version"] == ref.info()["redis_version"]
    assert isinstance(info["connected_clients"], int) and "used_memory" in info
    assert "db0" not in await r.info("keyspace")
    ref.set("k", "v")
    ref.set("t", "v", ex=1000)
    keyspace = await r.info("keyspace")
    assert keyspace.keys() == {"db0"} and keyspace["db0"].keys() == {"keys", "expires", "avg_ttl"}
    assert (keyspace["db0"]["keys"], keyspace["db0"]["expires"]) == (2, 1)
    server = await r.info("server")
    assert "redis_version" in server and "used_memory" not in server
    both = await r.info("server", "memory")
    assert "redis_version" in both and "used_memory" in both
    secs, micros = await r.time()
    assert type(secs) is int and type(micros) is int and 0 <= micros < 1_000_000
    assert abs(secs - ref.time()[0]) <= 5
    assert await r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    assert await r.config_get("maxmemory*") == ref.config_get("maxmemory*")
    assert await r.config_get("maxmemory", "databases") == {"maxmemory": "0", "databases": "16"}
    old = ref.config_get("slowlog-max-len")["slowlog-max-len"]
    try:
        assert await r.config_set("slowlog-max-len", 77) is True
        assert ref.config_get("slowlog-max-len") == {"slowlog-max-len": "77"}
    finally:
        ref.config_set("slowlog-max-len", old)
    client_id = await r.client_id()
    assert type(client_id) is int and client_id > 0
    name = f"iok-test-{int(r.is_async)}{int(r.decode)}"
    try:
        assert await r.client_setname(name) is True
        assert await r.client_getname() == name  # str in both modes, as in redis-py
    finally:  # the connection is shared with every later test: leave it unnamed
        assert await r.client_setname("") is True
    assert await r.client_getname() is None
    assert await r.dbsize() == 2


# -- pipelines -------------------------------------------------------------------


async def test_typed_methods_in_pipeline(r: Driver, ref: Any) -> None:
    ref.zadd("z", {"a": 1, "b": 2})
    ref.sadd("s", "x")
    p = r.pipeline(transaction=False)
    p.set("k", "v").get("k").set("k", "w", nx=True).incrbyfloat("f", 1.5)
    p.hset("h", mapping={"f": "1"}).hgetall("h").hexists("h", "f")
    p.zrange("z", 0, -1, withscores=True).zscore("z", "b").smembers("s").sismember("s", "y")
    p.scan(0, match="k").expire("k", 100).ping().time().info("keyspace").mget("k", "nope")
    results = await p.execute()
    v = r.v
    assert results[:12] == [
        True, v("v"), None, 1.5, 1, {v("f"): v("1")}, True,
        [(v("a"), 1.0), (v("b"), 2.0)], 2.0, {v("x")}, False, (0, [v("k")]),
    ]
    assert results[12:14] == [True, True]
    assert type(results[14]) is tuple and results[14][0] > 0
    assert results[15]["db0"]["keys"] == 5
    assert results[16] == [v("v"), None]
    assert 98 <= ref.ttl("k") <= 100


async def test_pipeline_errors(r: Driver, ref: Any) -> None:
    ref.set("str", "text")
    p = r.pipeline(transaction=False)
    p.set("a", "1").lpush("str", "x").incr("a").hgetall("str")
    results = await p.execute(raise_on_error=False)
    assert results[0] is True and results[2] == 2
    assert isinstance(results[1], redis.ResponseError) and "WRONGTYPE" in str(results[1])
    assert isinstance(results[3], redis.ResponseError)
    p = r.pipeline(transaction=False)
    p.incr("a").lpush("str", "x").incr("a")
    with pytest.raises(redis.ResponseError, match="WRONGTYPE"):
        await p.execute()
    assert ref.get("a") == b"4"  # the commands around the failing one still ran


async def test_single_command_pipeline(r: Driver, ref: Any) -> None:
    p = r.pipeline(transaction=False)
    p.set("k", "v")
    assert await p.execute() == [True]
    assert ref.get("k") == b"v"


async def test_transaction_pipeline(r: Driver, ref: Any) -> None:
    p = r.pipeline(transaction=True)
    p.set("a", "1").incr("a").get("a").zadd("z", {"m": 1}).zincrby("z", 1.5, "m")
    assert await p.execute() == [True, 2, r.v("2"), 1, 2.5]
    assert ref.get("a") == b"2"
