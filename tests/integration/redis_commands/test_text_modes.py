"""``encoding_errors`` and binary replies, as redis-py has them.

redis-py decodes each reply string with ``bytes.decode(encoding,
encoding_errors)`` under ``decode_responses=True`` and encodes str arguments
with ``str.encode(encoding, encoding_errors)``; the expected values here are
computed the same way from the bytes stored (read back with redis-py), for
every error handler iokernel accepts, both clients, RESP3 and RESP2 (the
``url`` fixture), plain commands, pipelines and ``execute()``.

DUMP (redis-py's NEVER_DECODE) stays bytes under ``decode_responses`` in
pipelines too, next to decoded replies of the other commands.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from iokernel import redis
from tests.integration.redis_commands.driver import Driver, _close

HANDLERS = ["replace", "ignore", "backslashreplace", "surrogateescape", "surrogatepass"]
BAD = b"foo\xff\xfebar"
SURROGATE = b"x\xed\xb3\xbfy"  # an encoded lone surrogate: only surrogatepass takes it
LONE = "a\udcffb"  # a str UTF-8 cannot encode strictly


def _client(url: str, is_async: bool, **kw: Any) -> Driver:
    cls = redis.AsyncClient if is_async else redis.Client
    return Driver(cls(url, **kw), is_async, bool(kw.get("decode_responses")))


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def is_async(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


async def _same(call: Callable[[], Awaitable[Any]], want: Callable[[], Any]) -> None:
    """``await call()`` gives ``want()``, or raises what ``want()`` raises
    (surrogatepass refuses bytes that are no surrogate, as Python's codec)."""
    try:
        expected = want()
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            await call()
        return
    assert await call() == expected


@pytest.mark.parametrize("errors", HANDLERS)
async def test_decoded_replies_use_the_error_handler(
    url: str, ref: Any, is_async: bool, errors: str
) -> None:
    def d(b: bytes) -> str:
        return b.decode("utf-8", errors)

    ref.set("bin", BAD)
    ref.set("sur", SURROGATE)
    ref.set("ok", "h\u00e9")
    ref.hset("h", mapping={b"k\xff": b"v\xfe"})
    ref.rpush("l", b"a\xff", b"fine")
    r = _client(url, is_async, decode_responses=True, encoding_errors=errors)
    try:
        await _same(lambda: r.get("bin"), lambda: d(BAD))
        assert await r.get("sur") == d(SURROGATE)
        assert await r.get("ok") == "h\u00e9"
        await _same(lambda: r.mget("bin", "ok", "nope"), lambda: [d(BAD), "h\u00e9", None])
        await _same(lambda: r.hgetall("h"), lambda: {d(b"k\xff"): d(b"v\xfe")})
        await _same(lambda: r.lrange("l", 0, -1), lambda: [d(b"a\xff"), "fine"])
        await _same(lambda: r.execute("GET", "bin"), lambda: d(BAD))
        for transaction in (False, True):
            p = r.pipeline(transaction=transaction)
            p.get("bin").hgetall("h").get("ok")
            await _same(p.execute, lambda: [d(BAD), {d(b"k\xff"): d(b"v\xfe")}, "h\u00e9"])
        p = r.pipeline()
        p.get("sur").get("ok")
        assert await p.execute() == [d(SURROGATE), "h\u00e9"]  # the pipeline is fine after
    finally:
        await _close(r.client)


@pytest.mark.parametrize("errors", ["strict", *HANDLERS])
async def test_str_arguments_use_the_error_handler(
    url: str, ref: Any, is_async: bool, errors: str
) -> None:
    r = _client(url, is_async, encoding_errors=errors)
    try:
        if errors == "strict":
            with pytest.raises(UnicodeEncodeError):
                await r.set("k", LONE)
            assert ref.get("k") is None
            return
        want = LONE.encode("utf-8", errors)
        assert await r.set("k", LONE) is True  # the fast path hands it on
        assert ref.get("k") == want
        assert await r.set(LONE, "v") is True
        assert ref.get(want) == b"v"
        p = r.pipeline()
        p.set("p", LONE).get("p")
        assert await p.execute() == [True, want]
        assert await r.execute("SET", "e", LONE) == b"OK"  # execute(): the reply as sent
        assert ref.get("e") == want
    finally:
        await _close(r.client)


async def test_surrogateescape_round_trip(url: str, ref: Any, is_async: bool) -> None:
    """Bytes read as str with surrogateescape are written back unchanged."""
    ref.set("bin", BAD)
    r = _client(url, is_async, decode_responses=True, encoding_errors="surrogateescape")
    try:
        text = await r.get("bin")
        assert isinstance(text, str)
        await r.set("copy", text)
        assert ref.get("copy") == BAD
    finally:
        await _close(r.client)


async def test_undecoded_client_ignores_the_handler(url: str, ref: Any, is_async: bool) -> None:
    ref.set("bin", BAD)
    r = _client(url, is_async, encoding_errors="replace")
    try:
        assert await r.get("bin") == BAD
    finally:
        await _close(r.client)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"encoding_errors": "bogus"}, "encoding_errors='bogus'.*'strict', 'replace'"),
        ({"encoding_errors": None}, "encoding_errors=None"),
        ({"encoding_errors": "xmlcharrefreplace"}, "encoding_errors='xmlcharrefreplace'"),
        ({"encoding": "latin-1"}, "UTF-8 only"),
    ],
)
def test_unknown_options_are_refused(redis_url: str, kw: dict[str, Any], match: str) -> None:
    for cls in (redis.Client, redis.AsyncClient):
        with pytest.raises(ValueError, match=match):
            cls(redis_url, decode_responses=True, **kw)


def test_utf8_spellings_are_accepted(url: str, ref: Any) -> None:
    ref.set("k", "h\u00e9")
    with redis.Client(url, decode_responses=True, encoding="UTF8") as r:
        assert r.get("k") == "h\u00e9"


@pytest.mark.parametrize("transaction", [False, True], ids=["plain", "multi"])
async def test_dump_in_a_decoding_pipeline(
    url: str, ref: Any, is_async: bool, transaction: bool
) -> None:
    ref.set("bin", BAD)
    ref.set("a", "\u00e9")
    ref.hset("h", "f", "v")
    ref.zadd("z", {"m": 1.5})
    r = _client(url, is_async, decode_responses=True)
    try:
        p = r.pipeline(transaction=transaction)
        p.dump("bin").get("a").dump("nope").hgetall("h").zrange("z", 0, -1, withscores=True)
        p.dump("a").lpush("a", 1)
        got = await p.execute(raise_on_error=False)
        assert got[:6] == [ref.dump("bin"), "\u00e9", None, {"f": "v"}, [("m", 1.5)],
                           ref.dump("a")]
        assert isinstance(got[6], redis.ResponseError) and "WRONGTYPE" in str(got[6])
        # The payload restores; the pipeline is reusable and decodes again.
        p.restore("copy", 0, got[0]).get("copy")
        with pytest.raises(UnicodeDecodeError):  # strict: BAD is not UTF-8
            await p.execute()
        assert ref.get("copy") == BAD
        p.get("a")
        assert await p.execute() == ["\u00e9"]
    finally:
        await _close(r.client)


async def test_dump_in_a_decoding_pipeline_with_replace(url: str, ref: Any, is_async: bool) -> None:
    ref.set("bin", BAD)
    r = _client(url, is_async, decode_responses=True, encoding_errors="replace")
    try:
        p = r.pipeline()
        p.get("bin").dump("bin")
        assert await p.execute() == [BAD.decode("utf-8", "replace"), ref.dump("bin")]
    finally:
        await _close(r.client)


async def test_dump_while_watching(url: str, ref: Any, is_async: bool) -> None:
    """Between watch() and multi() DUMP runs at once; after multi() it queues."""
    ref.set("bin", BAD)
    r = _client(url, is_async, decode_responses=True)
    try:
        p = r.client.pipeline()
        await r.resolve(p.watch("bin"), "watch")
        assert await r.resolve(p.dump("bin"), "dump") == ref.dump("bin")
        p.multi()
        p.dump("bin")
        p.set("done", "1")
        assert await r.resolve(p.execute(), "execute") == [ref.dump("bin"), True]
    finally:
        await _close(r.client)
