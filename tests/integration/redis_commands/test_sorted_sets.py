"""Sorted sets: ZADD options, reads, the ZRANGE family, removals, pops (blocking
ones included) and ZSCAN, through both clients (see __init__.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver


def server_version(ref: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in ref.info("server")["redis_version"].split("."))


# -- sorted sets -----------------------------------------------------------------


async def test_zadd_options(r: Driver, ref: Any) -> None:
    assert await r.zadd("z", {"a": 1, "b": 2.5, "c": -3}) == 3
    assert ref.zrange("z", 0, -1, withscores=True) == [(b"c", -3.0), (b"a", 1.0), (b"b", 2.5)]
    assert await r.zadd("z", {"a": 5, "d": 4}, nx=True) == 1
    assert ref.zscore("z", "a") == 1.0
    assert await r.zadd("z", {"a": 5, "e": 4}, xx=True) == 0
    assert ref.zscore("z", "a") == 5.0 and ref.zscore("z", "e") is None
    assert await r.zadd("z", {"a": 6, "b": 7}, ch=True) == 2
    assert await r.zadd("z", {"a": 1}, gt=True, ch=True) == 0
    assert await r.zadd("z", {"a": 1}, lt=True, ch=True) == 1
    assert await r.zadd("z", {"a": 10}, xx=True, gt=True, ch=True) == 1
    score = await r.zadd("z", {"a": 2.5}, incr=True)
    assert score == 12.5 and type(score) is float
    assert await r.zadd("z", {"a": 1}, incr=True, nx=True) is None
    assert await r.zadd("z", {"inf": float("inf"), "ninf": float("-inf")}) == 2
    assert ref.zscore("z", "inf") == float("inf") and ref.zscore("z", "ninf") == float("-inf")
    for bad in [{"nx": True, "xx": True}, {"gt": True, "lt": True}, {"nx": True, "gt": True}]:
        with pytest.raises(ValueError):
            await r.zadd("z", {"a": 1}, **bad)
    with pytest.raises(ValueError):
        await r.zadd("z", {"a": 1, "b": 2}, incr=True)
    with pytest.raises(ValueError):
        await r.zadd("z", {})


async def test_sorted_set_reads(r: Driver, ref: Any) -> None:
    ref.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4.5, "e": 10})
    assert await r.zcard("z") == 5
    assert await r.zcard("none") == 0
    assert (await r.zscore("z", "d"), await r.zscore("z", "zz")) == (4.5, None)
    assert type(await r.zscore("z", "a")) is float
    assert await r.zmscore("z", ["a", "zz", "d"]) == [1.0, None, 4.5]
    assert await r.zcount("z", 2, 4.5) == 3
    assert await r.zcount("z", "(2", "+inf") == 3
    assert await r.zincrby("z", 0.5, "a") == 1.5
    assert await r.zincrby("z", 2, "new") == 2.0
    assert await r.zrem("z", "new", "zz") == 1
    assert await r.zrank("z", "a") == 0
    assert await r.zrank("z", "zz") is None
    assert await r.zrevrank("z", "a") == 4
    if server_version(ref) >= (7, 2):
        assert await r.zrank("z", "b", withscore=True) == [1, 2.0]
        assert await r.zrevrank("z", "b", withscore=True) == [3, 2.0]
        assert await r.zrank("z", "zz", withscore=True) is None
    else:
        with pytest.raises(redis.ResponseError):
            await r.zrank("z", "b", withscore=True)


async def test_zrange_family(r: Driver, ref: Any) -> None:
    ref.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4.5, "e": 10})
    v, vs = r.v, r.vs
    assert await r.zrange("z", 0, -1) == vs("a", "b", "c", "d", "e")
    assert await r.zrange("z", 0, 1, withscores=True) == [(v("a"), 1.0), (v("b"), 2.0)]
    pairs = await r.zrange("z", 0, 0, withscores=True)
    assert type(pairs[0]) is tuple and type(pairs[0][1]) is float
    assert await r.zrange("z", 0, 1, desc=True) == vs("e", "d")
    assert await r.zrange("z", 2, 4.5, byscore=True) == vs("b", "c", "d")
    assert await r.zrange("z", "(2", "+inf", byscore=True, offset=1, num=2) == vs("d", "e")
    assert await r.zrange("z", 10, 3, byscore=True, desc=True, withscores=True) == [
        (v("e"), 10.0), (v("d"), 4.5), (v("c"), 3.0)]
    # score_cast_func gets the score as RESP2 spells it (redis-py): bytes, or str when decoding
    assert await r.zrange("z", 0, -1, withscores=True, score_cast_func=lambda x: x) == [
        (v("a"), v("1")), (v("b"), v("2")), (v("c"), v("3")), (v("d"), v("4.5")), (v("e"), v("10"))]
    assert await r.zrange("z", 0, 2, withscores=True, score_cast_func=int) == [
        (v("a"), 1), (v("b"), 2), (v("c"), 3)]
    assert await r.zrange("none", 0, -1, withscores=True) == []
    ref.zadd("lex", {"apple": 0, "banana": 0, "cherry": 0})
    assert await r.zrange("lex", "[b", "+", bylex=True) == vs("banana", "cherry")
    assert await r.zrange("lex", "+", "(b", bylex=True, desc=True) == vs("cherry", "banana")
    with pytest.raises(ValueError):
        await r.zrange("z", 0, 1, byscore=True, bylex=True)
    with pytest.raises(ValueError):
        await r.zrange("z", 0, 1, offset=1)
    assert await r.zrevrange("z", 0, 1) == vs("e", "d")
    assert await r.zrevrange("z", 0, 0, withscores=True) == [(v("e"), 10.0)]
    assert await r.zrangebyscore("z", 2, 4.5) == vs("b", "c", "d")
    assert await r.zrangebyscore("z", "-inf", "+inf", 1, 2) == vs("b", "c")
    assert await r.zrangebyscore("z", "(1", 3, withscores=True) == [
        (v("b"), 2.0), (v("c"), 3.0)]
    assert await r.zrevrangebyscore("z", "+inf", 4) == vs("e", "d")
    assert await r.zrevrangebyscore("z", 10, 0, start=0, num=1, withscores=True) == [
        (v("e"), 10.0)]


async def test_sorted_set_removal_and_pops(r: Driver, ref: Any) -> None:
    ref.zadd("z", {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6})
    assert await r.zremrangebyrank("z", 0, 0) == 1
    assert await r.zremrangebyscore("z", "(5", "+inf") == 1
    assert ref.zrange("z", 0, -1) == [b"b", b"c", b"d", b"e"]
    assert await r.zpopmin("z") == [(r.v("b"), 2.0)]
    assert await r.zpopmax("z") == [(r.v("e"), 5.0)]
    assert await r.zpopmin("z", 5) == [(r.v("c"), 3.0), (r.v("d"), 4.0)]
    assert await r.zpopmin("z") == []
    assert await r.zpopmax("z", 2) == []
    ref.zadd("y", {"x": 1, "y": 2})
    assert await r.zpopmax("y", 2) == [(r.v("y"), 2.0), (r.v("x"), 1.0)]


async def test_blocking_zset_pops(r: Driver, ref: Any) -> None:
    ref.zadd("z", {"a": 1, "b": 2.5})
    got = await r.bzpopmin(["none", "z"], timeout=1)
    assert got == (r.v("z"), r.v("a"), 1.0) and type(got[2]) is float
    assert await r.bzpopmax("z", 1) == (r.v("z"), r.v("b"), 2.5)
    assert await r.bzpopmin("z", timeout=0.1) is None
    assert await r.bzpopmax(["z"], timeout=0.1) is None


async def test_zscan(r: Driver, ref: Any) -> None:
    members = {f"m{i}": float(i) / 2 for i in range(40)}
    ref.zadd("z", members)
    expected = {r.v(m): s for m, s in members.items()}
    got: list[Any] = []
    cursor = 0
    for _ in range(1000):
        cursor, part = await r.zscan("z", cursor, count=7)
        got.extend(part)
        if cursor == 0:
            break
    assert all(type(p) is tuple and type(p[1]) is float for p in got)
    assert dict(got) == expected
    assert dict(await r.collect("zscan_iter", "z")) == expected
    assert await r.collect("zscan_iter", "z", match="m3") == [(r.v("m3"), 1.5)]
    assert await r.collect("zscan_iter", "z", match="m3", score_cast_func=lambda x: x) == [
        (r.v("m3"), r.v("1.5"))]
