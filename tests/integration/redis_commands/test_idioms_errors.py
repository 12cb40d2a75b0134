"""redis-py idioms: dict-style access, the exception names and hierarchy,
client-side validation, pipeline error messages, WATCH via
``pipeline.watch()/multi()`` and ``transaction()``; and the server and
sorted-set commands added for redis-py parity (CLIENT, ACL, SLOWLOG, OBJECT,
MEMORY, CONFIG SET pairs, HMSET, HRANDFIELD, ZUNIONSTORE, ZRANGEBYLEX ...).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver


def test_dict_access(redis_url: str) -> None:
    with redis.Client(redis_url) as r:
        r["k"] = "v"
        assert r["k"] == b"v" and "k" in r and "nope" not in r
        del r["k"]
        with pytest.raises(KeyError):
            r["k"]


def test_exception_hierarchy(redis_url: str) -> None:
    assert issubclass(redis.NoScriptError, redis.ResponseError)
    assert issubclass(redis.ReadOnlyError, redis.ResponseError)
    assert issubclass(redis.BusyLoadingError, redis.ResponseError)
    assert issubclass(redis.DataError, redis.RedisError) and issubclass(redis.DataError, TypeError)
    assert redis.RedisError is redis.Error
    with redis.Client(redis_url) as r:
        with pytest.raises(redis.NoScriptError):
            r.evalsha("0" * 40, 0)
        for bad in (True, None, object()):
            with pytest.raises(redis.DataError):
                r.set("k", bad)  # type: ignore[arg-type]
        with pytest.raises(redis.DataError):
            r.set("k", "v", ex=10.0)  # type: ignore[arg-type]
        assert r.get("k") is None


async def test_arguments_as_redis_py(r: Driver, ref: Any) -> None:
    ref.set("5", "five")
    ref.hset("h", "7", "seven")
    assert await r.mget([]) == []
    assert await r.mget(5) == [r.v("five")]
    assert await r.hmget("h", 7) == [r.v("seven")]
    assert await r.config_set("maxmemory-samples", 7, "lazyfree-lazy-user-del", "no") is True
    assert ref.config_get("maxmemory-samples") == {"maxmemory-samples": "7"}
    ref.config_set("maxmemory-samples", 5)


async def test_pipeline_errors_and_lifecycle(r: Driver, ref: Any) -> None:
    ref.set("c", "text")
    p = r.pipeline(transaction=False)
    assert p.pipe and len(p.pipe) == 0
    p.set("a", 1).lpush("c", 3).get("a")
    with pytest.raises(redis.ResponseError) as e:
        await p.execute()
    assert str(e.value).startswith("Command # 2 (LPUSH c 3) of pipeline caused error: WRONGTYPE")
    await r.resolve(p.pipe.close(), "close")
    assert await p.execute() == []


async def test_watch_multi_idiom(r: Driver, ref: Any) -> None:
    ref.set("n", 1)
    p = r.client.pipeline()
    assert await r.resolve(p.watch("n"), "watch") is True
    current = int(await r.resolve(p.get("n"), "get"))  # runs at once
    p.multi()
    assert p.set("n", current + 1) is p
    assert await r.resolve(p.execute(), "execute") == [True]
    assert ref.get("n") == b"2"
    await r.resolve(p.watch("n"), "watch")
    ref.set("n", 100)  # someone else changes it
    p.multi()
    p.set("n", 3)
    with pytest.raises(redis.WatchError):
        await r.resolve(p.execute(), "execute")
    assert ref.get("n") == b"100"
    await r.resolve(p.reset(), "reset")
    with pytest.raises(redis.PipelineError):
        p.multi()
        p.multi()


def test_transaction_retries(redis_url: str, redis_server: Any) -> None:
    with redis.Client(redis_url) as r:
        r.set("n", 0)
        calls = []

        def incr(pipe: Any) -> None:
            value = int(pipe.get("n"))
            calls.append(value)
            if len(calls) == 1:  # a concurrent writer, once
                t = threading.Thread(target=redis_server.command_raw, args=("SET", "n", 10))
                t.start()
                t.join()
            pipe.multi()
            pipe.set("n", value + 1)

        assert r.transaction(incr, "n") == [True]
        assert calls == [0, 10] and r.get("n") == b"11"
        assert r.transaction(lambda pipe: 42, "n", value_from_callable=True) == 42


async def test_async_transaction(redis_url: str) -> None:
    r = redis.AsyncClient(redis_url)
    await r.set("n", 5)

    async def double(pipe: Any) -> None:
        value = int(await pipe.get("n"))
        pipe.multi()
        pipe.set("n", value * 2)

    assert await r.transaction(double, "n") == [True]
    assert await r.get("n") == b"10"
    await r.close()


async def test_server_introspection(r: Driver, ref: Any) -> None:
    await r.client_setname("iok-me") if not r.is_async else None
    clients = await r.client_list()
    assert clients and all(isinstance(c, dict) and "addr" in c for c in clients)
    info = await r.client_info()
    assert isinstance(info["id"], int) and isinstance(info["addr"], str)
    assert await r.slowlog_reset() is True
    assert await r.slowlog_len() == 0
    assert isinstance(await r.slowlog_get(), list)
    ref.set("k", "12345")
    assert await r.object("encoding", "k") == r.v("int")
    assert isinstance(await r.object("refcount", "k"), int)
    assert isinstance(await r.memory_usage("k"), int)
    assert "peak.allocated" in await r.memory_stats()
    assert "default" in await r.acl_users()
    assert await r.acl_whoami() == "default"
    assert await r.acl_setuser("u1", enabled=True, passwords=["+pw"], keys=["k*"],
                               commands=["+get"]) is True
    user = await r.acl_getuser("u1")
    assert user["enabled"] is True and "~k*" in user["keys"] and "+get" in user["commands"]
    assert await r.acl_deluser("u1") == 1
    with pytest.raises(redis.DataError):
        await r.acl_setuser("u1", categories=["read"])
    assert len(await r.acl_genpass()) == 64


async def test_more_hash_and_zset_commands(r: Driver, ref: Any) -> None:
    v = r.v
    with pytest.warns(DeprecationWarning):
        assert await r.hmset("h", {"a": 1, "b": 2}) is True
    assert ref.hgetall("h") == {b"a": b"1", b"b": b"2"}
    assert await r.hrandfield("h") in (v("a"), v("b"))
    pairs = await r.hrandfield("h", 2, withvalues=True)
    assert sorted(pairs[::2]) == [v("a"), v("b")] and len(pairs) == 4
    ref.zadd("z1", {"a": 1, "b": 2})
    ref.zadd("z2", {"b": 3, "c": 4})
    assert await r.zunionstore("u", ["z1", "z2"]) == 3
    assert ref.zscore("u", "b") == 5.0
    assert await r.zinterstore("i", {"z1": 2, "z2": 1}, aggregate="MAX") == 1
    assert ref.zscore("i", "b") == 4.0
    assert await r.zunion(["z1", "z2"], withscores=True) == [(v("a"), 1.0), (v("c"), 4.0), (v("b"), 5.0)]
    assert await r.zdiff(["z1", "z2"]) == [v("a")]
    ref.zadd("lex", {"a": 0, "b": 0, "c": 0})
    assert await r.zrangebylex("lex", "[b", "+") == [v("b"), v("c")]
    assert await r.zrevrangebylex("lex", "+", "-", 0, 1) == [v("c")]
    assert await r.zlexcount("lex", "-", "+") == 3
    assert await r.zremrangebylex("lex", "[a", "[a") == 1
    with pytest.raises(redis.DataError):
        await r.zunionstore("u", ["z1"], aggregate="avg")


async def test_decode_responses_refuses_invalid_utf8(r: Driver, ref: Any) -> None:
    ref.set("bin", b"\xff\xfeok")
    ref.set("txt", "h\u00e9")
    if not r.decode:
        assert await r.get("bin") == b"\xff\xfeok"
        return
    with pytest.raises(UnicodeDecodeError):
        await r.get("bin")
    with pytest.raises(UnicodeDecodeError):
        await r.mget("txt", "bin")
    assert await r.get("txt") == "h\u00e9"  # the connection goes on
    p = r.pipeline(transaction=False)
    p.get("txt").get("bin")
    with pytest.raises(UnicodeDecodeError):
        await p.execute()
    assert await r.dump("bin") == ref.dump("bin")  # binary replies stay bytes
