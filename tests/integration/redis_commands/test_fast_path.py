"""The native fast path (``ClientCore`` in src/python/redis/fast.rs) against
the Python methods it stands in for, on the real server.

For every natively implemented method and every argument slot, each sample
value (str, bytes, int, float, huge int, bool, None, memoryview, bytearray,
str subclass, unencodable str, ...) is passed once through the client
(``client.get(...)``: the native method) and once through the Python method
itself (``Commands.get(client, ...)``), each on the same starting data. Both
must give the same result (type and value) or the same exception (type,
message, and stage: raised by the call or by the await), and leave the same
data on the server (read with redis-py). The plain forms must really take
the native path: ``_call`` (which only the Python methods use) is booby-trapped
for them. Then: many threads at once, the per-call timeout, dedicated
connections, a closed client, pipelines.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis as redispy

import iokernel
from iokernel import redis
from iokernel._redis_commands import Commands
from tests.integration.redis_commands.driver import Driver


class _Str(str):
    pass


class _Bytes(bytes):
    pass


# Samples per slot kind; the first of each is the plain default.
KEYS: list[Any] = ["s", b"s", "ключ", _Str("s"), _Bytes(b"s"), 5, 1.5, True, None,
                   memoryview(b"s"), bytearray(b"s"), "\udcff", object(), ["s"]]
VALUES: list[Any] = ["v", b"v", "é✓", 7, -3, 0, 2**70, 1.5, -0.0, float("inf"), 1e16, True,
                     False, None, memoryview(b"mv"), bytearray(b"ba"), _Str("v"), "\udcff",
                     object(), [1]]
INTS: list[Any] = [100, 0, -1, 2**63 - 1, 2**70, 1.5, "100000", b"100000", True, None,
                   _Str("100000")]

K, V, N = "K", "V", "N"  # key, value, number


@dataclass
class Case:
    method: str
    slots: list[tuple[str, Any]]  # (kind, default)
    variadic: bool = False  # the last slot may repeat / be absent
    optional_last: bool = False  # the last slot may be omitted


CASES = [
    Case("get", [(K, "s")]),
    Case("set", [(K, "new"), (V, "v")]),
    Case("setnx", [(K, "new"), (V, "v")]),
    Case("getset", [(K, "s"), (V, "v")]),
    Case("getdel", [(K, "s")]),
    Case("append", [(K, "s"), (V, "v")]),
    Case("strlen", [(K, "s")]),
    Case("mget", [(K, "s"), (K, "n")], variadic=True),
    Case("incr", [(K, "n"), (N, 5)], optional_last=True),
    Case("incrby", [(K, "n"), (N, 5)], optional_last=True),
    Case("decr", [(K, "n"), (N, 5)], optional_last=True),
    Case("decrby", [(K, "n"), (N, 5)], optional_last=True),
    Case("delete", [(K, "s"), (K, "n")], variadic=True),
    Case("unlink", [(K, "s"), (K, "h")], variadic=True),
    Case("exists", [(K, "s"), (K, "s")], variadic=True),
    Case("touch", [(K, "s"), (K, "z")], variadic=True),
    Case("expire", [(K, "s"), (N, 100)]),
    Case("pexpire", [(K, "s"), (N, 100000)]),
    Case("ttl", [(K, "s")]),
    Case("pttl", [(K, "s")]),
    Case("persist", [(K, "s")]),
    Case("hget", [(K, "h"), (K, "f")]),
    Case("hset", [(K, "h"), (K, "g"), (V, "v")]),
    Case("hsetnx", [(K, "h"), (K, "g"), (V, "v")]),
    Case("hdel", [(K, "h"), (K, "f")], variadic=True),
    Case("hexists", [(K, "h"), (K, "f")]),
    Case("hincrby", [(K, "h"), (K, "f"), (N, 3)], optional_last=True),
    Case("hlen", [(K, "h")]),
    Case("hstrlen", [(K, "h"), (K, "f")]),
    Case("lpush", [(K, "l"), (V, "v")], variadic=True),
    Case("rpush", [(K, "l"), (V, "v")], variadic=True),
    Case("llen", [(K, "l")]),
    Case("lindex", [(K, "l"), (N, 0)]),
    Case("sadd", [(K, "set"), (V, "v")], variadic=True),
    Case("srem", [(K, "set"), (V, "a")], variadic=True),
    Case("sismember", [(K, "set"), (V, "a")]),
    Case("scard", [(K, "set")]),
    Case("zscore", [(K, "z"), (V, "m")]),
    Case("zcard", [(K, "z")]),
]

SAMPLES = {K: KEYS, V: VALUES, N: INTS}


def _seed(ref: Any) -> None:
    ref.flushdb()
    ref.set("s", "5")
    ref.set("n", "10")
    ref.expire("s", 1000)
    ref.hset("h", mapping={"f": "7", "e": "x"})
    ref.rpush("l", "a", "b")
    ref.sadd("set", "a", "b")
    ref.zadd("z", {"m": 1.5})
    # Keys the non-str samples name, so WRONGTYPE and the like show up too.
    ref.set("5", "five")
    ref.hset("1.5", "f", "x")


def _dump(ref: Any) -> dict[bytes, Any]:
    out: dict[bytes, Any] = {}
    for k in sorted(ref.keys("*")):
        t = ref.type(k)
        if t == b"string":
            v: Any = ref.get(k)
        elif t == b"hash":
            v = ref.hgetall(k)
        elif t == b"list":
            v = ref.lrange(k, 0, -1)
        elif t == b"set":
            v = sorted(ref.smembers(k))
        else:
            v = ref.zrange(k, 0, -1, withscores=True)
        out[k] = (t, v, ref.ttl(k) > 0)
    return out


def _arg_lists(case: Case) -> list[tuple[Any, ...]]:
    """The default call, each slot with each sample, and the arity edges."""
    base = [d for _, d in case.slots]
    out = [tuple(base)]
    for i, (kind, _) in enumerate(case.slots):
        for sample in SAMPLES[kind][1:]:
            args = list(base)
            args[i] = sample
            out.append(tuple(args))
    out.append(tuple(base[:-1]))  # one short (fine when optional/variadic)
    out.append(())
    out.append((*base, base[-1]))  # one more (fine when variadic)
    if case.variadic:
        out.append((*base, *base))
    if case.method == "mget":
        out += [(["s", "n"],), (("s", b"n"),), ([],), (["s", 5],), ({"s": 1},), (["s"], "n")]
    return out


def _same(fast: Any, slow: Any, method: str) -> bool:
    if fast[0] != slow[0]:
        return False
    if fast[0] != "ok":
        return bool(fast == slow)
    a, b = fast[1], slow[1]
    if method in ("ttl", "pttl") and type(a) is type(b) is int and a > 0 and b > 0:
        # A remaining time, read moments apart: a minute of slack.
        return abs(a - b) <= (60 if method == "ttl" else 60_000)
    return type(a) is type(b) and bool(a == b)


async def _run(r: Driver, fn: Any, args: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        got = fn(*args)
    except Exception as e:
        return ("raised at call", (type(e), str(e)))
    try:
        value = await r.resolve(got, "call")
    except Exception as e:
        return ("raised at await", (type(e), str(e)))
    return ("ok", value)


def _is_plain(case: Case, args: tuple[Any, ...]) -> bool:
    """Whether the fast path must take this call natively."""
    kinds = [k for k, _ in case.slots]
    n_req = len(kinds) - (1 if case.optional_last else 0)
    if case.method in ("mget", "delete", "unlink", "exists", "touch"):
        n_req = 1  # mget(keys), delete(name): the rest is optional
    elif case.variadic:
        n_req = len(kinds)  # the fixed ones and at least one repeated
    if len(args) < n_req or (not case.variadic and len(args) > len(kinds)):
        return False
    for i, a in enumerate(args):
        kind = kinds[min(i, len(kinds) - 1)]
        if case.method == "mget" and i == 0 and type(a) in (list, tuple):
            if not a or not all(type(x) in (str, bytes) for x in a):
                return False
            continue
        ok = {K: (str, bytes), V: (str, bytes, int, float), N: (int,)}[kind]
        if type(a) not in ok or (type(a) is int and not -(2**63) <= a < 2**63):
            return False
        if type(a) is str and a == "\udcff":
            return False
    return True


@pytest.mark.parametrize("case", CASES, ids=[c.method for c in CASES])
async def test_native_method_equals_python_method(r: Driver, ref: Any, case: Case) -> None:
    client = r.client
    python_method = getattr(Commands, case.method)
    native = getattr(client, case.method)
    assert type(native).__name__ == "builtin_function_or_method", "not the native method"

    def trap(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the Python path ran for a plain call")

    for args in _arg_lists(case):
        _seed(ref)
        plain = _is_plain(case, args)
        if plain:
            client._call = trap
        try:
            fast = await _run(r, native, args)
        finally:
            client.__dict__.pop("_call", None)
        fast_state = _dump(ref)
        _seed(ref)
        slow = await _run(r, lambda *a: python_method(client, *a), args)
        slow_state = _dump(ref)
        assert _same(fast, slow, case.method), (case.method, args, fast, slow)
        assert fast_state == slow_state, (case.method, args)


async def test_keyword_arguments_take_the_python_path(r: Driver, ref: Any) -> None:
    """Keyword forms are the Python methods' (validation included)."""
    assert await r.set("k", "v", ex=100) is True
    assert 0 < ref.ttl("k") <= 100
    assert await r.set("k", "w", nx=True) is None
    assert await r.set(name="k", value="x") is True
    assert await r.get(name="k") == r.v("x")
    with pytest.raises(ValueError, match="mutually exclusive"):
        await r.set("k", "v", nx=True, xx=True)
    assert await r.incr("c", amount=4) == 4
    assert await r.hset("h", mapping={"a": 1, "b": 2}) == 2
    assert await r.expire("k", 50, nx=True) is True
    assert await r.expire("k", 50, nx=True) is False


@pytest.fixture
def witness(redis_url: str) -> Iterator[Any]:
    """redis-py on the shared server (``ref`` follows ``url``'s two servers)."""
    client = redispy.Redis.from_url(redis_url)
    yield client
    client.close()


async def test_threads_share_the_native_path(redis_url: str, witness: Any) -> None:
    """32 threads x 200 calls on one blocking client: every reply to its caller."""
    c = redis.Client(redis_url)
    errors: list[BaseException] = []

    def body(t: int) -> None:
        try:
            for i in range(200):
                assert c.set(f"k{t}", f"{t}:{i}") is True
                assert c.get(f"k{t}") == f"{t}:{i}".encode()
                c.incr("counter")
                c.hset("h", f"f{t}", i)
                assert c.hget("h", f"f{t}") == str(i).encode()
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=body, args=(t,)) for t in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    c.close()
    assert not errors, errors[:3]
    assert witness.get("counter") == b"6400"
    assert witness.hlen("h") == 32


async def test_many_tasks_share_the_native_path(redis_url: str, witness: Any) -> None:
    c = redis.AsyncClient(redis_url, decode_responses=True)

    async def task(t: int) -> None:
        for i in range(100):
            assert await c.set(f"k{t}", f"{t}:{i}") is True
            assert await c.get(f"k{t}") == f"{t}:{i}"
            assert await c.incr("counter") > 0
            assert await c.mget([f"k{t}", "nope"]) == [f"{t}:{i}", None]

    await asyncio.gather(*(task(t) for t in range(50)))
    await c.close()
    assert witness.get("counter") == b"5000"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
async def test_client_timeout_applies(redis_url: str, witness: Any, is_async: bool) -> None:
    """The client's timeout bounds a natively sent command: writes paused on
    the server, SET times out with the same exception as the Python path."""
    cls = redis.AsyncClient if is_async else redis.Client
    c = cls(redis_url, timeout=0.2)
    d = Driver(c, is_async, False)
    witness.execute_command("CLIENT", "PAUSE", 5000, "WRITE")
    try:
        with pytest.raises(iokernel.TimeoutError) as fast:
            await d.set("k", "v")
        with pytest.raises(iokernel.TimeoutError) as slow:
            await d.resolve(Commands.set(c, "k", "v"), "set")
    finally:
        witness.execute_command("CLIENT", "UNPAUSE")
    assert type(fast.value) is type(slow.value)
    assert str(fast.value) == str(slow.value)
    assert await d.get("k") in (None, b"v")  # the late SET may land; nothing crossed
    assert await d.set("k2", "w") is True
    assert await d.get("k2") == b"w"
    closed = c.close()
    if is_async:
        await closed


async def test_dedicated_connection_is_used(r: Driver, ref: Any, url: str) -> None:
    """A dedicated client's native calls go to its own connection (SELECT 1)."""
    async with r.dedicated() as d:
        await d.execute("SELECT", 1)
        assert await d.set("only-in-1", "v") is True
        assert await d.get("only-in-1") == r.v("v")
    assert ref.get("only-in-1") is None
    assert await r.get("only-in-1") is None


async def test_closed_client_raises(r: Driver) -> None:
    closed = r.client.close()
    if r.is_async:
        await closed
    with pytest.raises(iokernel.ConnectionError, match="closed"):
        await r.get("k")
    with pytest.raises(iokernel.ConnectionError, match="closed"):
        await r.set("k", "v")


async def test_pipelines_still_queue(r: Driver, ref: Any) -> None:
    p = r.pipeline()
    p.set("a", "1").get("a").incr("a").hset("h", "f", "v").hget("h", "f").expire("a", 10)
    assert await p.execute() == [True, r.v("1"), 2, 1, r.v("v"), True]
    assert ref.get("a") == b"2"
