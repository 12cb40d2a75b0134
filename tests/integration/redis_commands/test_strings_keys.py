"""Strings, counters, bits, keys, expiry and SCAN through both clients (see
__init__.py), and that the RESP2 runs really speak RESP2.
"""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver


async def test_wire_protocol(r: Driver, ref: Any, url: str, redis_url: str) -> None:
    """The RESP2 runs really see RESP2: a set arrives as an array there."""
    ref.sadd("s", "m")
    got = await r.execute("SMEMBERS", "s")
    assert got == ({r.v("m")} if url == redis_url else [r.v("m")])


# -- strings -------------------------------------------------------------------


async def test_set_get_and_value_types(r: Driver, ref: Any) -> None:
    assert await r.get("missing") is None
    assert await r.set("k", "v") is True
    assert await r.get("k") == r.v("v")
    for value, stored in [
        (b"raw", b"raw"), ("héllo ✓", "héllo ✓".encode()), (42, b"42"), (-7, b"-7"),
        (1.5, b"1.5"), (bytearray(b"ba"), b"ba"), (memoryview(b"mv"), b"mv"),
    ]:
        assert await r.set("t", value) is True
        assert ref.get("t") == stored, value
        assert await r.get("t") == r.v(stored)
    if not r.decode:
        blob = bytes(range(256)) * 40 + b"\r\n$-1\r\n"
        assert await r.set("bin", blob) is True
        assert await r.get("bin") == blob
    big = "x" * (3 * 1024 * 1024)
    assert await r.set("big", big) is True
    assert await r.get("big") == r.v(big)


async def test_set_options(r: Driver, ref: Any) -> None:
    assert await r.set("k", "1", nx=True) is True
    assert await r.set("k", "2", nx=True) is None
    assert await r.set("absent", "2", xx=True) is None
    assert ref.exists("absent") == 0
    assert await r.set("k", "3", xx=True) is True
    assert await r.set("k", "4", get=True) == r.v("3")
    assert await r.set("new", "x", get=True) is None
    assert await r.set("k", "5", nx=True, get=True) == r.v("4")
    assert ref.get("k") == b"4"

    assert await r.set("ex", "v", ex=100) is True
    assert 98 <= ref.ttl("ex") <= 100
    assert await r.set("ex", "v", ex=datetime.timedelta(seconds=50)) is True
    assert 48 <= ref.ttl("ex") <= 50
    assert await r.set("px", "v", px=20000) is True
    assert 18000 <= ref.pttl("px") <= 20000
    assert await r.set("px", "v", px=datetime.timedelta(milliseconds=30000)) is True
    assert 28000 <= ref.pttl("px") <= 30000
    at = datetime.datetime.now() + datetime.timedelta(seconds=200)
    assert await r.set("exat", "v", exat=at) is True
    assert 197 <= ref.ttl("exat") <= 200
    assert await r.set("exat", "v", exat=int(time.time()) + 300) is True
    assert 297 <= ref.ttl("exat") <= 300
    assert await r.set("pxat", "v", pxat=int(time.time() * 1000) + 400_000) is True
    assert 397 <= ref.ttl("pxat") <= 400
    assert await r.set("exat", "w", keepttl=True) is True
    assert 290 <= ref.ttl("exat") <= 300 and ref.get("exat") == b"w"
    assert await r.set("exat", "z") is True
    assert ref.ttl("exat") == -1

    with pytest.raises(ValueError):
        await r.set("k", "v", ex=1, px=1)
    with pytest.raises(ValueError):
        await r.set("k", "v", nx=True, xx=True)
    with pytest.raises(ValueError):
        await r.set("k", "v", ex=1, keepttl=True)


async def test_string_commands(r: Driver, ref: Any) -> None:
    assert await r.mset({"a": "1", "b": b"2", "c": 3}) is True
    assert await r.mget(["a", "b", "nope", "c"]) == [r.v("1"), r.v("2"), None, r.v("3")]
    assert await r.mget("a", "c") == r.vs("1", "3")
    assert await r.msetnx({"x": "1", "a": "9"}) is False
    assert ref.exists("x") == 0
    assert await r.msetnx({"x": "1", "y": "2"}) is True
    assert await r.setnx("a", "z") is False
    assert await r.setnx("n", "z") is True
    assert await r.setex("se", 100, "v") is True
    assert 98 <= ref.ttl("se") <= 100 and ref.get("se") == b"v"
    assert await r.setex("se", datetime.timedelta(minutes=1), "w") is True
    assert 58 <= ref.ttl("se") <= 60
    assert await r.psetex("pse", 5000, "v") is True
    assert 4000 <= ref.pttl("pse") <= 5000
    assert await r.psetex("pse", datetime.timedelta(seconds=7), "v") is True
    assert 6000 <= ref.pttl("pse") <= 7000
    assert await r.getset("a", "new") == r.v("1")
    assert await r.getset("fresh", "v") is None
    assert await r.getdel("a") == r.v("new")
    assert await r.getdel("a") is None
    assert ref.exists("a") == 0
    assert await r.append("s", "hello") == 5
    assert await r.append("s", " world") == 11
    assert await r.strlen("s") == 11
    assert await r.strlen("nope") == 0
    assert await r.getrange("s", 0, 4) == r.v("hello")
    assert await r.getrange("s", -5, -1) == r.v("world")
    assert await r.setrange("s", 6, "WORLD") == 11
    assert ref.get("s") == b"hello WORLD"


async def test_getex(r: Driver, ref: Any) -> None:
    ref.set("k", "v")
    assert await r.getex("missing") is None
    assert await r.getex("k") == r.v("v")
    assert await r.getex("k", ex=100) == r.v("v")
    assert 98 <= ref.ttl("k") <= 100
    assert await r.getex("k", px=datetime.timedelta(seconds=50)) == r.v("v")
    assert 48_000 <= ref.pttl("k") <= 50_000
    assert await r.getex("k", exat=datetime.datetime.now() + datetime.timedelta(seconds=70))
    assert 67 <= ref.ttl("k") <= 70
    assert await r.getex("k", pxat=int(time.time() * 1000) + 80_000) == r.v("v")
    assert 77 <= ref.ttl("k") <= 80
    assert await r.getex("k", persist=True) == r.v("v")
    assert ref.ttl("k") == -1
    with pytest.raises(ValueError):
        await r.getex("k", ex=1, persist=True)


async def test_bits(r: Driver, ref: Any) -> None:
    assert await r.setbit("b", 7, 1) == 0
    assert await r.setbit("b", 7, True) == 1
    assert ref.get("b") == b"\x01"
    assert await r.getbit("b", 7) == 1
    assert await r.getbit("b", 6) == 0
    ref.set("bc", "foobar")
    assert await r.bitcount("bc") == 26
    assert await r.bitcount("bc", 1, 1) == 6
    with pytest.raises(ValueError):
        await r.bitcount("bc", 1)


async def test_counters(r: Driver, ref: Any) -> None:
    assert await r.incr("n") == 1
    assert await r.incr("n", 10) == 11
    assert await r.incrby("n", 5) == 16
    assert await r.decr("n") == 15
    assert await r.decr("n", 5) == 10
    assert await r.decrby("n", 20) == -10
    assert ref.get("n") == b"-10"
    value = await r.incrbyfloat("f", 1.5)
    assert value == 1.5 and type(value) is float
    assert await r.incrbyfloat("f") == 2.5
    assert await r.incrbyfloat("f", -0.25) == 2.25
    ref.set("notnum", "abc")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        await r.incr("notnum")


# -- keys ----------------------------------------------------------------------


async def test_key_commands(r: Driver, ref: Any) -> None:
    ref.mset({"a": "1", "b": "2", "c": "3", "d": "4"})
    assert await r.exists("a") == 1
    assert await r.exists("a", "b", "zz", "a") == 3
    assert await r.touch("a", "b", "zz") == 2
    assert await r.delete("a", "zz") == 1
    assert await r.delete("zz") == 0
    assert await r.unlink("b", "c") == 2
    assert ref.keys("*") == [b"d"]
    assert await r.type("d") == r.v("string")
    assert await r.type("zz") == r.v("none")
    ref.rpush("l", "x")
    assert await r.type("l") == r.v("list")
    assert await r.rename("d", "e") is True
    assert ref.get("e") == b"4"
    with pytest.raises(redis.ResponseError, match="no such key"):
        await r.rename("nothing", "x")
    assert await r.renamenx("e", "l") is False
    assert await r.renamenx("e", "f") is True
    assert sorted(await r.keys()) == r.vs("f", "l")
    assert await r.keys("f*") == r.vs("f")
    assert await r.randomkey() in r.vs("f", "l")
    assert await r.dbsize() == 2
    assert await r.flushdb() is True
    assert await r.dbsize() == 0
    assert await r.randomkey() is None
    ref.set("x", "1")
    assert await r.flushdb(asynchronous=True) is True
    ref.set("x", "1")
    assert await r.flushall() is True
    assert ref.dbsize() == 0
    ref.set("x", "1")
    assert await r.flushall(asynchronous=True) is True
    assert ref.dbsize() == 0


async def test_expiry(r: Driver, ref: Any) -> None:
    ref.mset({"k": "v", "p": "v"})
    assert await r.ttl("missing") == -2
    assert await r.ttl("k") == -1
    assert await r.expire("missing", 10) is False
    assert await r.expire("k", 100) is True
    assert await r.ttl("k") in (99, 100)
    assert await r.expire("k", datetime.timedelta(seconds=200)) is True
    assert 198 <= ref.ttl("k") <= 200
    assert await r.expire("k", 50, gt=True) is False
    assert await r.expire("k", 50, lt=True) is True
    assert await r.expire("k", 10, nx=True) is False
    assert await r.expire("p", 10, xx=True) is False
    assert await r.persist("k") is True
    assert await r.persist("k") is False
    assert await r.pexpire("k", 30_000) is True
    assert 28_000 <= await r.pttl("k") <= 30_000
    assert await r.pexpire("k", datetime.timedelta(seconds=40)) is True
    assert 38_000 <= ref.pttl("k") <= 40_000
    assert await r.pexpire("k", 1000, gt=True) is False
    at = datetime.datetime.now() + datetime.timedelta(seconds=300)
    assert await r.expireat("k", at) is True
    assert 297 <= ref.ttl("k") <= 300
    assert await r.expireat("k", int(time.time()) + 400, nx=True) is False
    assert await r.expireat("k", int(time.time()) + 400) is True
    assert 397 <= ref.ttl("k") <= 400
    assert await r.pexpireat("k", at + datetime.timedelta(seconds=200)) is True
    assert 497 <= ref.ttl("k") <= 500
    assert await r.pexpireat("k", int(time.time() * 1000) + 600_000, xx=True) is True
    assert 597 <= ref.ttl("k") <= 600
    assert await r.pttl("missing") == -2
    assert await r.expire("k", 0) is True
    assert ref.exists("k") == 0


async def test_scan(r: Driver, ref: Any) -> None:
    names = {f"key:{i}" for i in range(40)}
    ref.mset({n: "v" for n in names})
    ref.hset("hash:1", "f", "v")
    seen: list[Any] = []
    cursor = 0
    for _ in range(1000):
        cursor, keys = await r.scan(cursor, match="key:*", count=7)
        assert isinstance(cursor, int) and isinstance(keys, list)
        seen.extend(keys)
        if cursor == 0:
            break
    assert set(seen) == set(r.vs(*names))
    assert set(await r.collect("scan_iter")) == set(r.vs(*names, "hash:1"))
    assert set(await r.collect("scan_iter", match="key:1*", count=3)) == set(
        r.vs(*(n for n in names if n.startswith("key:1")))
    )
    assert await r.collect("scan_iter", _type="hash") == r.vs("hash:1")
    cursor, keys = await r.scan(_type="hash", count=1000)
    assert cursor == 0 and keys == r.vs("hash:1")
