"""Every typed Redis command against a real server, through both clients.

Each test body is written once, as a coroutine that awaits every command, and
runs eight times: blocking ``redis.Client`` and asyncio ``redis.AsyncClient``,
each with ``decode_responses`` off and on (the ``r`` fixture), each against a
server that speaks RESP3 and one that only speaks RESP2 (HELLO renamed away,
so the kernel falls back; the ``url`` fixture): every reply parser meets both
wire shapes. For the
blocking client the :class:`Driver` calls the method directly and checks it
did *not* return an awaitable, then hands the value to ``await``; for the
asyncio client it checks the method *did* return one. ``r.v("x")`` is the
reply the mode expects for the string ``x`` (bytes, or str when decoding).

Side effects are checked with an independent reference client (redis-py,
``ref``) wherever the client's own reads could hide a wrong argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import redis as redispy

from iokernel import redis
from iokernel._redis_commands import REFUSED_ON_SHARED
from tests.servers import RedisServer

MODES = [(False, False), (True, False), (False, True), (True, True)]
MODE_IDS = ["sync", "async", "sync-decode", "async-decode"]


class Driver:
    """One client dressed so that ``await r.cmd(...)`` works for both kinds."""

    def __init__(self, client: Any, is_async: bool, decode: bool) -> None:
        self.client = client
        self.is_async = is_async
        self.decode = decode

    def v(self, value: str | bytes) -> str | bytes:
        if self.decode:
            return value.decode() if isinstance(value, bytes) else value
        return value.encode() if isinstance(value, str) else value

    def vs(self, *values: str | bytes) -> list[str | bytes]:
        return [self.v(x) for x in values]

    async def resolve(self, result: Any, what: str) -> Any:
        kind = "AsyncClient" if self.is_async else "Client"
        if self.is_async:
            assert inspect.isawaitable(result), f"{kind}.{what} returned {result!r}"
            return await result
        assert not inspect.isawaitable(result), f"{kind}.{what} returned an awaitable"
        return result

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.resolve(method(*args, **kwargs), name)

        return call

    def background(self, name: str, *args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        """Start a (blocking) command without waiting for it."""
        method = getattr(self.client, name)
        if self.is_async:
            return asyncio.ensure_future(method(*args, **kwargs))
        return asyncio.ensure_future(asyncio.to_thread(method, *args, **kwargs))

    async def collect(self, name: str, *args: Any, **kwargs: Any) -> list[Any]:
        """Drain ``scan_iter`` and friends (a generator, or an async generator)."""
        it = getattr(self.client, name)(*args, **kwargs)
        if self.is_async:
            assert inspect.isasyncgen(it), f"AsyncClient.{name} is not an async generator"
            return [x async for x in it]
        assert inspect.isgenerator(it), f"Client.{name} is not a generator"
        return list(it)

    @contextlib.asynccontextmanager
    async def dedicated(self) -> AsyncIterator[Driver]:
        """``client.dedicated()``: a context manager, or an async one."""
        if self.is_async:
            async with self.client.dedicated() as d:
                yield Driver(d, True, self.decode)
        else:
            with self.client.dedicated() as d:
                yield Driver(d, False, self.decode)

    def pipeline(self, **kwargs: Any) -> PipeDriver:
        return PipeDriver(self, self.client.pipeline(**kwargs))

    def register_script(self, source: str) -> ScriptDriver:
        return ScriptDriver(self, self.client.register_script(source))


class ScriptDriver:
    """A registered script; ``await script(keys, args)`` for both kinds."""

    def __init__(self, driver: Driver, script: Any) -> None:
        self.driver = driver
        self.script = script
        self.sha = script.sha

    async def __call__(self, keys: Any = (), args: Any = (), client: Any = None) -> Any:
        return await self.driver.resolve(self.script(keys, args, client=client), "script()")


class PipeDriver:
    """Typed methods queue and chain; ``await p.execute()`` for both kinds."""

    def __init__(self, driver: Driver, pipe: Any) -> None:
        self.driver = driver
        self.pipe = pipe

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.pipe, name)

        def call(*args: Any, **kwargs: Any) -> PipeDriver:
            assert method(*args, **kwargs) is self.pipe, f"pipeline.{name} did not chain"
            return self

        return call

    async def execute(self, **kwargs: Any) -> Any:
        return await self.driver.resolve(self.pipe.execute(**kwargs), "pipeline.execute()")


async def _close(client: Any) -> None:
    closed = client.close()
    if inspect.isawaitable(closed):
        await closed


@pytest.fixture(scope="module")
def resp2_server() -> Iterator[RedisServer]:
    """A server without HELLO: the kernel falls back to RESP2 on it."""
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


async def test_wire_protocol(r: Driver, ref: Any, url: str, redis_url: str) -> None:
    """The RESP2 runs really see RESP2: a set arrives as an array there."""
    ref.sadd("s", "m")
    got = await r.execute("SMEMBERS", "s")
    assert got == ({r.v("m")} if url == redis_url else [r.v("m")])


def server_version(ref: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in ref.info("server")["redis_version"].split("."))


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


async def test_blocking_pop_does_not_stall_other_callers(r: Driver) -> None:
    """A BLPOP waiting for data must leave the shared connection free."""
    waiting = r.background("blpop", "q", timeout=5)
    await asyncio.sleep(0.2)
    assert not waiting.done()
    started = time.monotonic()
    assert await r.set("k", "v") is True
    assert await r.get("k") == r.v("v")
    assert await r.rpush("q", "item") == 1
    assert time.monotonic() - started < 1.0
    assert await asyncio.wait_for(waiting, 5) == (r.v("q"), r.v("item"))


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
    assert await r.zrange("z", 0, -1, withscores=True, score_cast_func=int) == [
        (v("a"), 1), (v("b"), 2), (v("c"), 3), (v("d"), 4), (v("e"), 10)]
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
    assert await r.collect("zscan_iter", "z", match="m3", score_cast_func=int) == [
        (r.v("m3"), 1)]


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
