"""Streams: XADD/XRANGE/XTRIM/XDEL, XREAD (BLOCK on a connection of its own),
consumer groups (XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO,
XGROUP *), through both clients and both wire protocols (see __init__.py),
with redis-py's reply shapes; side effects checked with redis-py (``ref``).
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver


async def test_xadd_xrange_xtrim_xdel(r: Driver, ref: Any) -> None:
    v = r.v
    i1 = await r.xadd("s", {"a": "1"})
    i2 = await r.xadd("s", {"b": "2", "c": "3"}, id="9999999999999-0")
    assert i2 == v("9999999999999-0") and ref.xlen("s") == 2
    assert await r.xlen("s") == 2
    assert await r.xrange("s") == [(i1, {v("a"): v("1")}), (i2, {v("b"): v("2"), v("c"): v("3")})]
    assert await r.xrevrange("s", count=1) == [(i2, {v("b"): v("2"), v("c"): v("3")})]
    assert await r.xrange("s", min=i2) == [(i2, {v("b"): v("2"), v("c"): v("3")})]
    assert await r.xadd("missing", {"a": 1}, nomkstream=True) is None
    assert ref.exists("missing") == 0
    for n in range(5):
        await r.xadd("t", {"n": n}, maxlen=3, approximate=False)
    assert ref.xlen("t") == 3
    assert await r.xtrim("t", maxlen=1, approximate=False) == 2
    assert await r.xdel("s", i1, "1-1") == 1
    assert [e[0] for e in ref.xrange("s")] == [i2 if isinstance(i2, bytes) else i2.encode()]
    with pytest.raises(redis.DataError):
        await r.xadd("s", {})
    with pytest.raises(redis.DataError):
        await r.xadd("s", {"a": 1}, maxlen=1, minid="0-1")
    with pytest.raises(redis.DataError):
        await r.xtrim("s")


async def test_xread_and_blocking_xread(r: Driver, ref: Any) -> None:
    v = r.v
    assert await r.xread({"s": "0-0"}) == []
    first = ref.xadd("s", {"k": "v"})
    got = await r.xread({"s": "0-0"}, count=5)
    assert got == [[v("s"), [(v(first.decode()), {v("k"): v("v")})]]]
    # BLOCK runs on a connection of its own: the shared one keeps serving.
    waiter = r.background("xread", {"s": "$"}, block=10_000)
    await asyncio.sleep(0.05)
    assert await r.ping() is True
    deadline = asyncio.get_running_loop().time() + 10
    new_id = None
    while not waiter.done() and asyncio.get_running_loop().time() < deadline:
        new_id = ref.xadd("s", {"late": "1"})
        await asyncio.sleep(0.05)
    got = await asyncio.wait_for(waiter, 10)
    assert got[0][0] == v("s") and got[0][1][0][1] == {v("late"): v("1")}
    assert new_id is not None
    assert await r.xread({"s": "$"}, block=1) == []


async def test_consumer_groups(r: Driver, ref: Any) -> None:
    v = r.v
    assert await r.xgroup_create("s", "g", id="0", mkstream=True) is True
    with pytest.raises(redis.ResponseError, match="BUSYGROUP"):
        await r.xgroup_create("s", "g")
    ids = [ref.xadd("s", {"n": n}).decode() for n in range(3)]
    got = await r.xreadgroup("g", "c1", {"s": ">"}, count=2)
    assert got == [[v("s"), [(v(ids[0]), {v("n"): v("0")}), (v(ids[1]), {v("n"): v("1")})]]]
    pending = await r.xpending("s", "g")
    assert pending == {"pending": 2, "min": v(ids[0]), "max": v(ids[1]),
                       "consumers": [{"name": v("c1"), "pending": 2}]}
    rng = await r.xpending_range("s", "g", "-", "+", 10)
    assert [p["message_id"] for p in rng] == [v(ids[0]), v(ids[1])]
    assert rng[0]["consumer"] == v("c1") and rng[0]["times_delivered"] == 1
    assert await r.xack("s", "g", ids[0]) == 1
    assert ref.xpending("s", "g")["pending"] == 1
    claimed = await r.xclaim("s", "g", "c2", 0, [ids[1]])
    assert claimed == [(v(ids[1]), {v("n"): v("1")})]
    assert await r.xclaim("s", "g", "c1", 0, ids[1], justid=True) == [v(ids[1])]
    auto = await r.xautoclaim("s", "g", "c2", 0, start_id="0-0", count=10)
    assert auto[1] == [(v(ids[1]), {v("n"): v("1")})]
    assert await r.xautoclaim("s", "g", "c3", 0, justid=True) == [v(ids[1])]
    assert await r.xgroup_createconsumer("s", "g", "c9") == 1
    consumers = await r.xinfo_consumers("s", "g")
    assert sorted(c["name"] for c in consumers) == sorted(v(x) for x in ("c1", "c2", "c3", "c9"))
    groups = await r.xinfo_groups("s")
    assert groups[0]["name"] == v("g") and groups[0]["pending"] == 1
    info = await r.xinfo_stream("s")
    assert info["length"] == 3 and info["first-entry"] == (v(ids[0]), {v("n"): v("0")})
    full = await r.xinfo_stream("s", full=True)
    assert list(full["entries"]) == [v(x) for x in ids] and full["groups"][0]["name"] == v("g")
    assert await r.xgroup_delconsumer("s", "g", "c3") == 1
    assert await r.xgroup_setid("s", "g", "0") is True
    again = await r.xreadgroup("g", "c1", {"s": ">"}, noack=True)
    assert len(again[0][1]) == 3
    assert await r.xgroup_destroy("s", "g") is True
    assert ref.xinfo_groups("s") == []
    with pytest.raises(redis.DataError):
        await r.xreadgroup("g", "c", {"s": ">"}, count=0)


async def test_streams_in_pipeline(r: Driver, ref: Any) -> None:
    p = r.pipeline(transaction=False)
    p.xadd("s", {"a": 1}, id="1-0").xadd("s", {"b": 2}, id="2-0").xrange("s").xlen("s")
    out = await p.execute()
    v = r.v
    assert out == [v("1-0"), v("2-0"), [(v("1-0"), {v("a"): v("1")}), (v("2-0"), {v("b"): v("2")})], 2]
    with pytest.raises(redis.ResponseError, match="BLOCK"):
        r.client.pipeline().xread({"s": "$"}, block=0)
