"""Issue 15's list, item by item, where no other module pins the behaviour
down: each assertion is what redis-py 8.1 does for the same call (the
client, the asyncio client, decode on and off, RESP3 and RESP2: the ``r``
fixture). The items already covered elsewhere are named at the end.
"""

from __future__ import annotations

from typing import Any

import pytest

from iokernel import _redis_commands_support as support
from iokernel import redis
from tests.integration.redis_commands.driver import Driver


async def test_score_cast_func_gets_the_raw_score(r: Driver, ref: Any) -> None:
    ref.zadd("z", {"a": 1.5, "b": 2})
    seen: list[Any] = []

    def spy(x: Any) -> Any:
        seen.append(x)
        return x

    await r.zrange("z", 0, -1, withscores=True, score_cast_func=spy)
    await r.zrangebyscore("z", 0, 10, withscores=True, score_cast_func=spy)
    await r.zunion(["z"], withscores=True, score_cast_func=spy)
    assert seen == [r.v("1.5"), r.v("2")] * 3
    # redis-py 8: a cast that refuses the spelling gets float(score): int(b"1.5") -> 1
    assert await r.zrange("z", 0, -1, withscores=True, score_cast_func=int) == [
        (r.v("a"), 1), (r.v("b"), 2)]
    (cursor, pairs) = await r.zscan("z", score_cast_func=int)
    assert cursor == 0 and sorted(pairs) == [(r.v("a"), 1), (r.v("b"), 2)]


def test_rank_with_score_hands_the_cast_resp2_spelling() -> None:
    """ZRANK WITHSCORE needs Redis 7.2 (the test server is 7.0): the reply
    conversion alone. RESP3 sends a double, RESP2 the text."""
    post = support.rank_with_score(lambda x: x)
    assert post([2, 3.0]) == [2, b"3"]
    assert post([2, b"3.5"]) == [2, b"3.5"]
    assert post([2, "3.5"]) == [2, "3.5"]
    assert post(None) is None
    assert support.rank_with_score(int)([1, 2.5]) == [1, 2]
    assert support.rank_with_score(float)([1, b"2.5"]) == [1, 2.5]


async def test_numbers_as_keys_and_fields(r: Driver, ref: Any) -> None:
    ref.set("5", "five")
    ref.set("1.5", "x")
    ref.hset("h", "7", "seven")
    ref.rpush("9", "nine")
    assert await r.get(5) == r.v("five")
    assert await r.mget(5, 1.5) == [r.v("five"), r.v("x")]
    assert await r.hmget("h", 7) == [r.v("seven")]
    assert await r.hget("h", 7) == r.v("seven")
    assert await r.blpop(9, 1) == (r.v("9"), r.v("nine"))
    assert await r.exists(5, 1.5, 6) == 2


async def test_mget_of_nothing(r: Driver) -> None:
    assert await r.mget([]) == []
    assert await r.mget(()) == []
    p = r.pipeline()
    p.mget([]).set("k", "v").mget([])
    assert await p.execute() == [[], True, []]


async def test_values_refused_client_side(r: Driver, ref: Any) -> None:
    for bad in (True, False):
        with pytest.raises(redis.DataError):
            await r.set("k", bad)
        with pytest.raises(redis.DataError):
            await r.hset("h", "f", bad)
        with pytest.raises(redis.DataError):
            await r.rpush("l", "ok", bad)
    for ex in (10.0, 1.5):
        with pytest.raises(redis.DataError):
            await r.set("k", "v", ex=ex)
        with pytest.raises(redis.DataError):
            await r.set("k", "v", px=ex)
    assert ref.keys("*") == []  # nothing reached the server


async def test_empty_pipeline_truthy_and_closable(r: Driver) -> None:
    p = r.client.pipeline()
    assert bool(p) is True and len(p) == 0
    assert await r.resolve(p.execute(), "execute") == []
    p.set("k", "v")
    assert len(p) == 1
    await r.resolve(p.close(), "close")
    assert len(p) == 0 and bool(p) is True
    assert await r.resolve(p.execute(), "execute") == []
    assert await r.get("k") is None  # close() dropped the queued SET


async def test_pipeline_error_message(r: Driver, ref: Any) -> None:
    ref.set("c", "text")
    for transaction in (False, True):
        p = r.pipeline(transaction=transaction)
        p.set("a", 1).get("a").lpush("c", 3)
        with pytest.raises(redis.ResponseError) as e:
            await p.execute()
        assert str(e.value).startswith(
            "Command # 3 (LPUSH c 3) of pipeline caused error: WRONGTYPE"), str(e.value)
    p = r.pipeline()
    p.execute_command("NOSUCHCOMMAND", "x")
    with pytest.raises(redis.ResponseError, match=r"^Command # 1 \(NOSUCHCOMMAND x\) of pipeline"):
        await p.execute()


async def test_config_set_several_pairs(r: Driver, ref: Any) -> None:
    old = ref.config_get("maxmemory-samples")["maxmemory-samples"]
    try:
        assert await r.config_set("maxmemory-samples", 9, "lazyfree-lazy-user-del", "yes") is True
        got = ref.config_get("maxmemory-samples")
        assert got == {"maxmemory-samples": "9"}
        assert ref.config_get("lazyfree-lazy-user-del") == {"lazyfree-lazy-user-del": "yes"}
        with pytest.raises(redis.DataError):
            await r.config_set("maxmemory-samples", 9, "lazyfree-lazy-user-del")
    finally:
        ref.config_set("maxmemory-samples", old)
        ref.config_set("lazyfree-lazy-user-del", "no")


async def test_bitcount_byte_and_bit(r: Driver, ref: Any) -> None:
    ref.set("b", b"\xff\x0f")  # 8 + 4 bits set
    assert await r.bitcount("b") == 12
    assert await r.bitcount("b", 1, 1) == 4
    assert await r.bitcount("b", 1, 1, "BYTE") == 4
    assert await r.bitcount("b", 0, 3, "BIT") == 4
    assert await r.bitcount("b", 8, 11, "BIT") == 0
    assert await r.bitcount("b", 12, 15, "bit") == 4
    with pytest.raises(redis.DataError):
        await r.bitcount("b", 1)


async def test_select_refused_with_what_to_do(r: Driver) -> None:
    with pytest.raises(redis.ResponseError) as e:
        r.client.select(2)
    assert "put the database in the URL" in str(e.value)
    with pytest.raises(redis.ResponseError) as e2:
        await r.execute("SELECT", 2)
    assert str(e2.value) == str(e.value)
    assert await r.execute("PING") == r.v("PONG")


async def test_command_getkeysandflags_keeps_the_server_order(r: Driver) -> None:
    """RESP3 sends the flags as a set; the order is the server's (RESP2's) anyway."""
    v, vs = r.v, r.vs
    assert await r.command_getkeysandflags("LMOVE", "l1", "l2", "left", "left") == [
        [v("l1"), vs("RW", "access", "delete")], [v("l2"), vs("RW", "insert")]]
    assert await r.command_getkeysandflags("SET", "k", "v") == [[v("k"), vs("OW", "update")]]
    assert await r.command_getkeysandflags("SET", "k", "v", "GET") == [
        [v("k"), vs("RW", "access", "update")]]


# Covered elsewhere: dict access, exception names and hierarchy, ex=10.0 and
# True on the blocking client (test_idioms_errors.py); UnicodeDecodeError on
# invalid UTF-8 (test_idioms_errors.py, test_text_modes.py); WATCH idioms
# (test_idioms_errors.py, test_pipeline_leases.py); pub/sub, MONITOR and the
# other connection-state commands (test_shared_refusals.py,
# test_functions_connection.py); every command family (one module each).
