"""Geo (GEOADD, GEODIST, GEOPOS, GEOHASH, GEOSEARCH, GEORADIUS...), SORT,
bit operations (BITCOUNT BYTE/BIT, BITOP, BITPOS, BITFIELD), HyperLogLog
and COPY/DUMP/RESTORE, through both clients and protocols (see __init__.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver

PLACES = (13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania")


async def test_geo(r: Driver, ref: Any) -> None:
    v = r.v
    assert await r.geoadd("g", PLACES) == 2
    assert await r.geoadd("g", (13.361389, 38.115556, "Palermo"), nx=True) == 0
    dist = await r.geodist("g", "Palermo", "Catania", "km")
    assert isinstance(dist, float) and 166.2 < dist < 166.3
    assert await r.geodist("g", "Palermo", "nowhere") is None
    pos = await r.geopos("g", "Palermo", "nowhere")
    assert pos[1] is None and abs(pos[0][0] - 13.361389) < 1e-4 and abs(pos[0][1] - 38.115556) < 1e-4
    assert await r.geohash("g", "Palermo") == ["sqc8b49rny0"]
    assert await r.geosearch("g", longitude=15, latitude=37, radius=200, unit="km", sort="ASC") == [
        v("Catania"), v("Palermo")]
    near = await r.geosearch("g", member="Palermo", radius=200, unit="km", withdist=True,
                             withcoord=True, withhash=True, sort="ASC")
    assert near[0][0] == v("Palermo") and near[0][1] == 0.0 and isinstance(near[0][2], int)
    assert isinstance(near[0][3], tuple) and len(near) == 2
    assert await r.georadius("g", 15, 37, 100, unit="km") == [v("Catania")]
    assert await r.georadiusbymember("g", "Palermo", 10, unit="km", withdist=True) == [
        [v("Palermo"), 0.0]]
    assert await r.geosearchstore("dst", "g", member="Palermo", radius=500, unit="km") == 2
    assert ref.zcard("dst") == 2
    with pytest.raises(redis.DataError):
        await r.geoadd("g", (1.0, 2.0))
    with pytest.raises(redis.DataError):
        await r.geodist("g", "a", "b", "parsecs")
    with pytest.raises(redis.DataError):
        await r.geosearch("g", member="Palermo", longitude=1, latitude=2, radius=1)


async def test_sort(r: Driver, ref: Any) -> None:
    v = r.v
    ref.rpush("l", 3, 1, 2)
    ref.mset({"w_1": 30, "w_2": 20, "w_3": 10, "o_1": "one", "o_2": "two", "o_3": "three"})
    assert await r.sort("l") == [v("1"), v("2"), v("3")]
    assert await r.sort("l", desc=True, start=0, num=2) == [v("3"), v("2")]
    assert await r.sort("l", by="w_*") == [v("3"), v("2"), v("1")]
    assert await r.sort("l", get=["#", "o_*"], groups=True) == [
        (v("1"), v("one")), (v("2"), v("two")), (v("3"), v("three"))]
    assert await r.sort("l", store="sorted") == 3
    assert ref.lrange("sorted", 0, -1) == [b"1", b"2", b"3"]
    ref.rpush("names", "b", "a")
    assert await r.sort("names", alpha=True) == [v("a"), v("b")]
    assert await r.sort_ro("l", desc=True) == [v("3"), v("2"), v("1")]
    with pytest.raises(redis.DataError):
        await r.sort("l", start=1)
    with pytest.raises(redis.DataError):
        await r.sort("l", get="#", groups=True)


async def test_bit_operations(r: Driver, ref: Any) -> None:
    ref.set("a", b"\xff\xf0\x00")
    ref.set("b", b"\x0f")
    assert await r.bitcount("a") == 12
    assert await r.bitcount("a", 1, 1) == 4
    assert await r.bitcount("a", 0, 3, "BIT") == 4
    assert await r.bitop("AND", "dst", "a", "b") == 3
    assert ref.get("dst") == b"\x0f\x00\x00"
    assert await r.bitop("NOT", "n", "b") == 1
    assert ref.get("n") == b"\xf0"
    assert await r.bitpos("a", 0) == 12
    assert await r.bitpos("a", 1, 2) == -1
    assert await r.bitpos("a", 0, 0, 0, "BIT") == -1
    with pytest.raises(redis.DataError):
        await r.bitpos("a", 2)
    with pytest.raises(redis.DataError):
        await r.bitcount("a", 1)
    bf = r.client.bitfield("f")
    result = await r.resolve(bf.set("u8", 0, 255).get("u8", 0).incrby("u8", 0, 10, "SAT").execute(),
                             "bitfield().execute()")
    assert result == [0, 255, 255]
    assert await r.bitfield_ro("f", "u8", 0, items=[("u4", 4)]) == [255, 15]


async def test_hyperloglog(r: Driver, ref: Any) -> None:
    assert await r.pfadd("h1", "a", "b", "c") == 1
    assert await r.pfadd("h1", "a") == 0
    assert await r.pfadd("h2", "c", "d") == 1
    assert await r.pfcount("h1") == 3
    assert await r.pfcount("h1", "h2") == 4
    assert await r.pfmerge("h3", "h1", "h2") is True
    assert ref.pfcount("h3") == 4


async def test_copy_dump_restore(r: Driver, ref: Any) -> None:
    ref.set("k", b"\xff\x00binary")
    ref.rpush("l", 1, 2)
    assert await r.copy("k", "k2") is True
    assert await r.copy("k", "k2") is False
    assert await r.copy("k", "k2", replace=True) is True
    assert ref.get("k2") == b"\xff\x00binary"
    payload = await r.dump("l")
    assert isinstance(payload, bytes) and payload == ref.dump("l")
    assert await r.dump("missing") is None
    assert await r.restore("l2", 0, payload) is True
    assert ref.lrange("l2", 0, -1) == [b"1", b"2"]
    with pytest.raises(redis.ResponseError, match="BUSYKEY"):
        await r.restore("l2", 0, payload)
    assert await r.restore("l2", 10_000, payload, replace=True, idletime=5) is True
    assert 0 < ref.pttl("l2") <= 10_000
    kpayload = await r.dump("k")
    assert kpayload == ref.dump("k")
