"""The option table: every bad option value, for every client kind, fails at
construction (or at the call, for per-call ``timeout=``) with the exact
exception type and a message naming the option and the value.

No server is needed: options are checked before anything is sent, and the
clients that are made point at a port nothing listens on.
"""

from __future__ import annotations

import asyncio
import inspect
import math
from collections.abc import Callable
from typing import Any

import pytest

from iokernel import _native, pg, redis

REDIS_URL = "redis://127.0.0.1:1/0"
PG_DSN = "postgresql://app:pw@127.0.0.1:1/app"

KINDS: dict[str, Callable[..., Any]] = {
    "redis.Client": lambda **kw: redis.Client(REDIS_URL, **kw),
    "redis.AsyncClient": lambda **kw: redis.AsyncClient(REDIS_URL, **kw),
    "pg.Client": lambda **kw: pg.Client(PG_DSN, **kw),
    "pg.AsyncClient": lambda **kw: pg.AsyncClient(PG_DSN, **kw),
}
REDIS_KINDS = ("redis.Client", "redis.AsyncClient")
PG_KINDS = ("pg.Client", "pg.AsyncClient")

BAD_SECONDS = [
    ("1", TypeError), (True, TypeError), (b"1", TypeError), ([1], TypeError),
    (0, ValueError), (0.0, ValueError), (-1, ValueError), (math.nan, ValueError),
    (math.inf, ValueError), (-math.inf, ValueError), (1e300, ValueError),
]
BAD_COUNTS = [
    (0, ValueError), (-1, ValueError), (2**40, ValueError), (2**70, ValueError),
    (1.5, TypeError), (4.0, TypeError), (True, TypeError), ("3", TypeError), (None, TypeError),
]
BAD_ZERO_OK_COUNTS = [(v, e) for v, e in BAD_COUNTS if v != 0]

# (kinds, option, bad value, exception type)
TABLE: list[tuple[tuple[str, ...], str, Any, type[Exception]]] = [
    *((tuple(KINDS), "timeout", v, e) for v, e in BAD_SECONDS),
    *((tuple(KINDS), "connect_timeout", v, e) for v, e in BAD_SECONDS),
    *((tuple(KINDS), "health_check_interval", v, e) for v, e in BAD_SECONDS),
    *((tuple(KINDS), "max_in_flight", v, e) for v, e in BAD_COUNTS),
    *((tuple(KINDS), "max_queued", v, e) for v, e in BAD_ZERO_OK_COUNTS),
    (REDIS_KINDS, "connect_timeout", None, TypeError),
    (REDIS_KINDS, "decode_responses", "yes", TypeError),
    (REDIS_KINDS, "decode_responses", 1, TypeError),
    (REDIS_KINDS, "client_name", 3, TypeError),
    (REDIS_KINDS, "client_name", b"web", TypeError),
    (REDIS_KINDS, "client_name", "a b", ValueError),
    (REDIS_KINDS, "client_name", "", ValueError),
    (REDIS_KINDS, "client_name", "line\n", ValueError),
    *((PG_KINDS, "connections", v, e) for v, e in BAD_COUNTS),
    (PG_KINDS, "connections", 1025, ValueError),
    *((PG_KINDS, "max_dedicated", v, e) for v, e in BAD_COUNTS),
    *((PG_KINDS, "statement_cache_size", v, e) for v, e in BAD_ZERO_OK_COUNTS),
]

CASES = [
    pytest.param(kind, option, value, exc, id=f"{kind}-{option}={value!r}")
    for kinds, option, value, exc in TABLE
    for kind in kinds
]


def _assert_names(err: BaseException, option: str, value: Any) -> None:
    msg = str(err)
    assert option in msg, msg
    assert repr(value) in msg, msg


@pytest.mark.parametrize(("kind", "option", "value", "exc"), CASES)
def test_bad_option_is_refused_at_construction(
    kind: str, option: str, value: Any, exc: type[Exception]
) -> None:
    with pytest.raises(Exception) as ei:
        KINDS[kind](**{option: value})
    assert type(ei.value) is exc, f"{type(ei.value).__name__}: {ei.value}"
    _assert_names(ei.value, option, value)


@pytest.mark.parametrize(
    ("option", "value"),
    [("health_check_interval", 0), ("timeout", 0), ("timeout", math.inf)],
)
@pytest.mark.parametrize("kind", KINDS)
def test_none_is_how_to_say_off(kind: str, option: str, value: Any) -> None:
    """0 and infinity are refused where None means "off"/"no limit", and the
    message says so."""
    with pytest.raises(ValueError, match="or None"):
        KINDS[kind](**{option: value})


GOOD: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (tuple(KINDS), {"timeout": None, "health_check_interval": None}),
    (tuple(KINDS), {"timeout": 5, "connect_timeout": 0.5, "health_check_interval": 30}),
    (tuple(KINDS), {"max_in_flight": 1, "max_queued": 0}),  # 0: no queue
    (REDIS_KINDS, {"client_name": "web-1", "decode_responses": True}),
    (PG_KINDS, {"connections": 1, "max_dedicated": 1, "statement_cache_size": 0,
                "connect_timeout": None}),
]


@pytest.mark.parametrize(
    ("kind", "opts"),
    [pytest.param(k, o, id=f"{k}-{o}") for kinds, o in GOOD for k in kinds],
)
async def test_good_options_are_accepted(kind: str, opts: dict[str, Any]) -> None:
    c = KINDS[kind](**opts)
    closed = c.close()
    if inspect.isawaitable(closed):
        await closed


async def _call(f: Callable[[], Any]) -> Any:
    out = f()
    return await out if inspect.isawaitable(out) else out


def _per_call(kind: str) -> list[tuple[str, Callable[[Any, Any], Any]]]:
    """(name, call(client, timeout)) of the methods that take ``timeout=``."""
    if kind in REDIS_KINDS:
        return [("execute", lambda c, t: c.execute("PING", timeout=t)),
                ("execute blocking", lambda c, t: c.execute("BLPOP", "k", 1, timeout=t))]
    return [
        ("fetch", lambda c, t: c.fetch("SELECT 1", timeout=t)),
        ("fetchrow", lambda c, t: c.fetchrow("SELECT 1", timeout=t)),
        ("fetchval", lambda c, t: c.fetchval("SELECT 1", timeout=t)),
        ("execute", lambda c, t: c.execute("SELECT 1", timeout=t)),
        ("executemany", lambda c, t: c.executemany("SELECT $1", [(1,)], timeout=t)),
    ]


@pytest.mark.parametrize(("value", "exc"), BAD_SECONDS)
@pytest.mark.parametrize("kind", KINDS)
async def test_bad_per_call_timeout_is_refused(kind: str, value: Any, exc: type[Exception]) -> None:
    c = KINDS[kind](timeout=5.0)
    for name, call in _per_call(kind):
        with pytest.raises(Exception) as ei:
            await asyncio.wait_for(_call(lambda call=call: call(c, value)), 10)
        assert type(ei.value) is exc, f"{name}: {type(ei.value).__name__}: {ei.value}"
        _assert_names(ei.value, "timeout", value)


@pytest.mark.parametrize("kind", REDIS_KINDS)
async def test_redis_execute_needs_a_command_name(kind: str) -> None:
    c = KINDS[kind]()
    with pytest.raises(TypeError, match="needs a command name"):
        await _call(c.execute)
    with pytest.raises(TypeError, match="needs a command name"):
        await _call(c.execute_command)
    with pytest.raises(TypeError, match="command name must be str or bytes"):
        await _call(lambda: c.execute(None))
    with pytest.raises(TypeError, match="needs a command name"):
        c.pipeline().execute_command()


@pytest.mark.parametrize("kind", PG_KINDS)
async def test_pg_execute_needs_sql(kind: str) -> None:
    c = KINDS[kind]()
    with pytest.raises(TypeError, match="sql"):
        await _call(c.execute)


@pytest.mark.parametrize("kind", REDIS_KINDS)
async def test_redis_pipeline_options(kind: str) -> None:
    c = KINDS[kind]()
    with pytest.raises(TypeError) as ei:
        c.pipeline(transaction="yes")
    _assert_names(ei.value, "transaction", "yes")
    p = c.pipeline()
    with pytest.raises(TypeError) as ei:
        await _call(lambda: p.execute(raise_on_error=None))
    _assert_names(ei.value, "raise_on_error", None)


NATIVE: list[tuple[str, Callable[[], Any]]] = [
    ("redis connect_timeout=1e300",
     lambda: _native.RedisService(REDIS_URL, connect_timeout=1e300)),
    ("redis idle_ping=inf", lambda: _native.RedisService(REDIS_URL, idle_ping=math.inf)),
    ("pg connect_timeout=inf", lambda: _native.PgService(PG_DSN, connect_timeout=math.inf)),
    ("pg connect_timeout=-1", lambda: _native.PgService(PG_DSN, connect_timeout=-1.0)),
    ("pg idle_ping=nan", lambda: _native.PgService(PG_DSN, idle_ping=math.nan)),
    ("pg max_dedicated=0", lambda: _native.PgService(PG_DSN, max_dedicated=0)),
    ("pg dsn connect_timeout=inf", lambda: _native.PgService(PG_DSN + "?connect_timeout=inf")),
    ("pg dsn connect_timeout=-1", lambda: _native.PgService(PG_DSN + "?connect_timeout=-1")),
    ("redis call timeout=1e300",
     lambda: _native.RedisService(REDIS_URL).call((b"PING",), False, 1e300)),
]


@pytest.mark.parametrize("make", [m for _, m in NATIVE], ids=[i for i, _ in NATIVE])
def test_native_layer_refuses_bad_seconds_without_a_panic(make: Callable[[], Any]) -> None:
    """Under the Python checks, the native services refuse such values too
    (ValueError), rather than panic converting them to a Duration."""
    with pytest.raises(ValueError):
        make()
