"""Hashes, lists (blocking pops included) and sets, with their SCAN variants,
through both clients (see __init__.py).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver

# -- hashes --------------------------------------------------------------------


async def test_hashes(r: Driver, ref: Any) -> None:
    assert await r.hset("h", "f1", "v1") == 1
    assert await r.hset("h", "f1", "v1b") == 0
    assert await r.hset("h", mapping={"f2": "v2", "f3": 3}) == 2
    assert await r.hset("h", items=["f4", "v4", "f5", b"v5"]) == 2
    assert await r.hset("h", "f6", "v6", mapping={"f7": "v7"}) == 2
    with pytest.raises(ValueError):
        await r.hset("h")
    assert ref.hget("h", "f3") == b"3"
    assert await r.hsetnx("h", "f1", "x") is False
    assert await r.hsetnx("h", "f8", "v8") is True
    assert await r.hget("h", "f1") == r.v("v1b")
    assert await r.hget("h", "nope") is None
    assert await r.hget("nokey", "f") is None
    assert await r.hmget("h", ["f1", "nope", "f2"]) == [r.v("v1b"), None, r.v("v2")]
    assert await r.hmget("h", "f2", "f3") == r.vs("v2", "3")
    everything = {
        r.v(k): r.v(v)
        for k, v in [("f1", "v1b"), ("f2", "v2"), ("f3", "3"), ("f4", "v4"), ("f5", "v5"),
                     ("f6", "v6"), ("f7", "v7"), ("f8", "v8")]
    }
    assert await r.hgetall("h") == everything
    assert await r.hgetall("nokey") == {}
    assert await r.hlen("h") == 8
    assert sorted(await r.hkeys("h")) == sorted(everything)
    assert sorted(await r.hvals("h")) == sorted(everything.values())
    assert await r.hstrlen("h", "f1") == 3
    assert await r.hexists("h", "f1") is True
    assert await r.hexists("h", "nope") is False
    assert await r.hdel("h", "f1", "f2", "nope") == 2
    assert await r.hincrby("h", "n") == 1
    assert await r.hincrby("h", "n", 41) == 42
    value = await r.hincrbyfloat("h", "x", 0.5)
    assert value == 0.5 and type(value) is float
    assert await r.hincrbyfloat("h", "x") == 1.5
    assert ref.hget("h", "x") == b"1.5"


async def test_hscan(r: Driver, ref: Any) -> None:
    fields = {f"f{i}": f"v{i}" for i in range(30)}
    ref.hset("h", mapping=fields)
    expected = {r.v(k): r.v(v) for k, v in fields.items()}
    got: dict[Any, Any] = {}
    cursor = 0
    for _ in range(1000):
        cursor, part = await r.hscan("h", cursor, count=5)
        assert isinstance(part, dict)
        got.update(part)
        if cursor == 0:
            break
    assert got == expected
    assert await r.hscan("h", match="f1*") == (0, {k: v for k, v in expected.items()
                                                 if k.startswith(r.v("f1"))})
    assert dict(await r.collect("hscan_iter", "h", count=4)) == expected
    assert await r.collect("hscan_iter", "h", match="x*") == []
    assert await r.collect("hscan_iter", "h", match="f2") == [(r.v("f2"), r.v("v2"))]


# -- lists ---------------------------------------------------------------------


async def test_lists(r: Driver, ref: Any) -> None:
    assert await r.rpush("l", "a", "b", "c") == 3
    assert await r.lpush("l", "z", "y") == 5
    assert ref.lrange("l", 0, -1) == [b"y", b"z", b"a", b"b", b"c"]
    assert await r.lpushx("nol", "x") == 0
    assert await r.rpushx("nol", "x") == 0
    assert ref.exists("nol") == 0
    assert await r.lpushx("l", "x") == 6
    assert await r.rpushx("l", "w") == 7
    assert await r.lrange("l", 0, -1) == r.vs("x", "y", "z", "a", "b", "c", "w")
    assert await r.lrange("nol", 0, -1) == []
    assert await r.llen("l") == 7
    assert await r.lindex("l", 1) == r.v("y")
    assert await r.lindex("l", 100) is None
    assert await r.lset("l", 0, "X") is True
    with pytest.raises(redis.ResponseError, match="index out of range"):
        await r.lset("l", 100, "X")
    assert await r.lpop("l") == r.v("X")
    assert await r.rpop("l") == r.v("w")
    assert await r.lpop("l", 2) == r.vs("y", "z")
    assert await r.rpop("l", 1) == r.vs("c")
    assert await r.lpop("nol") is None
    assert await r.lpop("nol", 3) is None
    assert await r.rpop("nol", 3) is None
    ref.rpush("m", "a", "b", "a", "c", "a")
    assert await r.lrem("m", 2, "a") == 2
    assert ref.lrange("m", 0, -1) == [b"b", b"c", b"a"]
    assert await r.linsert("m", "BEFORE", "c", "new") == 4
    assert await r.linsert("m", "AFTER", "nothere", "x") == -1
    assert await r.ltrim("m", 1, 2) is True
    assert ref.lrange("m", 0, -1) == [b"new", b"c"]
    ref.rpush("p", "a", "b", "c", "b", "b")
    assert await r.lpos("p", "b") == 1
    assert await r.lpos("p", "b", rank=2) == 3
    assert await r.lpos("p", "b", rank=-1) == 4
    assert await r.lpos("p", "b", count=0) == [1, 3, 4]
    assert await r.lpos("p", "b", count=5, maxlen=4) == [1, 3]
    assert await r.lpos("p", "zz") is None
    assert await r.lmove("p", "q") == r.v("a")
    assert await r.lmove("p", "q", "RIGHT", "LEFT") == r.v("b")
    assert ref.lrange("q", 0, -1) == [b"b", b"a"]
    assert await r.rpoplpush("p", "q") == r.v("b")
    assert await r.rpoplpush("empty", "q") is None
    assert ref.lrange("q", 0, -1) == [b"b", b"b", b"a"]


async def test_blocking_list_pops(r: Driver, ref: Any) -> None:
    ref.rpush("l2", "a", "b")
    assert await r.blpop(["l1", "l2"], timeout=1) == (r.v("l2"), r.v("a"))
    assert await r.brpop("l2", 1) == (r.v("l2"), r.v("b"))
    started = time.monotonic()
    assert await r.blpop("l2", timeout=0.2) is None
    assert await r.brpop(["l1", "l2"], timeout=0.2) is None
    assert time.monotonic() - started >= 0.35
    ref.rpush("src", "1", "2")
    assert await r.brpoplpush("src", "dst", 1) == r.v("2")
    assert await r.blmove("src", "dst", 1, "LEFT", "LEFT") == r.v("1")
    assert ref.lrange("dst", 0, -1) == [b"1", b"2"]
    assert await r.brpoplpush("src", "dst", 0.1) is None
    assert await r.blmove("src", "dst", 0.1) is None


async def test_blocking_pop_does_not_stall_other_callers(r: Driver, ref: Any) -> None:
    """A BLPOP waiting for data must leave the shared connection free."""
    blocked = ref.info("clients")["blocked_clients"]
    waiting = r.background("blpop", "q", timeout=20)
    # It waits in the server before the others go (on a busy machine the
    # background caller may start late; a sleep would only make it likely).
    deadline = time.monotonic() + 30
    while ref.info("clients")["blocked_clients"] <= blocked:
        assert time.monotonic() < deadline, "the BLPOP never reached the server"
        await asyncio.sleep(0.01)
    assert not waiting.done()
    started = time.monotonic()
    assert await r.set("k", "v") is True
    assert await r.get("k") == r.v("v")
    assert await r.rpush("q", "item") == 1
    assert time.monotonic() - started < 5  # behind the BLPOP they would wait its 20 s
    assert await asyncio.wait_for(waiting, 10) == (r.v("q"), r.v("item"))


# -- sets ----------------------------------------------------------------------


async def test_sets(r: Driver, ref: Any) -> None:
    assert await r.sadd("s", "a", "b", "c", "a") == 3
    assert await r.sadd("s", 1) == 1
    assert await r.srem("s", "1", "zz") == 1
    assert await r.smembers("s") == set(r.vs("a", "b", "c"))
    assert await r.smembers("none") == set()
    assert await r.sismember("s", "a") is True
    assert await r.sismember("s", "zz") is False
    assert await r.smismember("s", ["a", "zz", "c"]) == [True, False, True]
    assert await r.smismember("s", "zz", "b") == [False, True]
    assert await r.scard("s") == 3
    ref.sadd("t", "b", "c", "d")
    assert await r.sinter(["s", "t"]) == set(r.vs("b", "c"))
    assert await r.sinter("s", "t", "none") == set()
    assert await r.sunion("s", "t") == set(r.vs("a", "b", "c", "d"))
    assert await r.sdiff(["s", "t"]) == set(r.vs("a"))
    assert await r.sinterstore("i", ["s", "t"]) == 2
    assert await r.sunionstore("u", "s", "t") == 4
    assert await r.sdiffstore("d", "t", "s") == 1
    assert ref.smembers("i") == {b"b", b"c"}
    assert ref.smembers("u") == {b"a", b"b", b"c", b"d"}
    assert ref.smembers("d") == {b"d"}
    assert await r.smove("s", "t", "a") is True
    assert await r.smove("s", "t", "a") is False
    assert ref.smembers("t") == {b"a", b"b", b"c", b"d"}
    assert await r.srandmember("t") in r.vs("a", "b", "c", "d")
    sample = await r.srandmember("t", 2)
    assert isinstance(sample, list) and len(sample) == 2 and set(sample) <= set(
        r.vs("a", "b", "c", "d"))
    assert len(await r.srandmember("t", -6)) == 6
    assert await r.srandmember("none") is None
    popped = await r.spop("t")
    assert popped in r.vs("a", "b", "c", "d")
    rest = await r.spop("t", 5)
    assert isinstance(rest, list) and sorted([popped, *rest]) == r.vs("a", "b", "c", "d")
    assert await r.spop("t") is None
    assert ref.exists("t") == 0


async def test_sscan(r: Driver, ref: Any) -> None:
    members = {f"m{i}" for i in range(50)}
    ref.sadd("s", *members)
    got: list[Any] = []
    cursor = 0
    for _ in range(1000):
        cursor, part = await r.sscan("s", cursor, count=10)
        got.extend(part)
        if cursor == 0:
            break
    assert set(got) == set(r.vs(*members))
    assert set(await r.collect("sscan_iter", "s")) == set(r.vs(*members))
    assert set(await r.collect("sscan_iter", "s", match="m1?", count=5)) == set(
        r.vs(*(m for m in members if m.startswith("m1") and len(m) == 3)))
