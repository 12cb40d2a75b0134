"""Argument builders, reply parsers and the shared-connection refusal table.

Helpers for :mod:`iokernel._redis_commands`, kept apart so that module holds
only the typed methods. Everything here is a pure function of its input.

Reply parsers ("post functions") receive the raw reply exactly as the native
layer delivers it, which depends on two things the command layer cannot know:

* the protocol the connection negotiated: RESP3 maps, sets, doubles and
  nested score pairs, or their flat RESP2 spellings;
* ``decode_responses``: every bulk or simple string is ``bytes`` or ``str``.

So each parser accepts every shape and yields the value redis-py users expect
from a RESP2 connection (its long-standing "legacy" shapes), e.g. sorted-set
ranges WITHSCORES as a list of ``(member, float)`` tuples whatever the wire
said.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ._errors import DataError

Key = bytes | str | bytearray | memoryview
Value = bytes | str | int | float | bytearray | memoryview
Expiry = int | datetime.timedelta
AbsExpiry = int | datetime.datetime
Keys = Key | Iterable[Key]
Timeout = float | int | None
Post = Callable[[Any], Any] | None

_STRINGLIKE = (bytes, str, bytearray, memoryview)


class Caller:
    """What every command mixin relies on: the client, asyncio client or
    pipeline that mixes it in implements ``_call`` and ``_call_undecoded``
    (see _redis_commands)."""

    def _call(self, args: tuple[Any, ...], post: Post = None) -> Any:
        raise NotImplementedError

    def _call_undecoded(self, args: tuple[Any, ...]) -> Any:
        """As ``_call``, the reply's strings as bytes whatever
        ``decode_responses`` says (DUMP: binary payloads)."""
        raise NotImplementedError

    def _own_connection(self) -> bool:
        """Whether commands run on a connection of the caller's own
        (``dedicated()``, a pipeline after ``watch()``), not the shared one."""
        return getattr(self, "_conn", None) is not None


# -- arguments --------------------------------------------------------------


def seconds(value: Expiry) -> int:
    """A relative expiry in whole seconds (``timedelta`` or int)."""
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds())
    return value


def millis(value: Expiry) -> int:
    """A relative expiry in whole milliseconds (``timedelta`` or int)."""
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    return value


def unix_seconds(value: AbsExpiry) -> int:
    """An absolute expiry as a Unix timestamp in seconds."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp())
    return value


def unix_millis(value: AbsExpiry) -> int:
    """An absolute expiry as a Unix timestamp in milliseconds."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return value


def timeout_seconds(value: float | datetime.timedelta | None) -> float | int:
    """A blocking-command timeout; ``None`` and 0 both mean "wait forever"."""
    if value is None:
        return 0
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    return value


def expire_flags(
    ex: Expiry | None, px: Expiry | None, exat: AbsExpiry | None, pxat: AbsExpiry | None
) -> tuple[Any, ...]:
    """The ``EX|PX|EXAT|PXAT`` part of SET/GETEX; at most one may be given."""
    for what, value in (("ex", ex), ("px", px), ("exat", exat), ("pxat", pxat)):
        if isinstance(value, str) and value.isdigit():
            continue  # redis-py sends an integer spelled as a string
        if value is not None and (
            isinstance(value, bool)
            or not isinstance(value, (int, datetime.timedelta, datetime.datetime))
        ):
            raise DataError(f"{what} must be datetime.timedelta or int, not {value!r}")
    chosen: list[tuple[bytes, int]] = []
    if ex is not None:
        chosen.append((b"EX", seconds(ex)))
    if px is not None:
        chosen.append((b"PX", millis(px)))
    if exat is not None:
        chosen.append((b"EXAT", unix_seconds(exat)))
    if pxat is not None:
        chosen.append((b"PXAT", unix_millis(pxat)))
    if len(chosen) > 1:
        raise DataError("ex, px, exat and pxat are mutually exclusive")
    return chosen[0] if chosen else ()


def flags(**options: bool) -> tuple[bytes, ...]:
    """Upper-case flag tokens for the options that are true, in call order."""
    return tuple(name.rstrip("_").upper().encode() for name, on in options.items() if on)


def keys_and_args(keys: Any, args: Sequence[Any]) -> tuple[Any, ...]:
    """redis-py's ``(keys, *args)`` convention: one key or an iterable, plus more."""
    if isinstance(keys, (*_STRINGLIKE, int, float)):  # one key (numbers too, as redis-py)
        return (keys, *args)
    return (*keys, *args)


def mapping_pairs(mapping: Mapping[Any, Any]) -> tuple[Any, ...]:
    """``{k: v}`` flattened to ``k1, v1, k2, v2 ...``."""
    return tuple(item for pair in mapping.items() for item in pair)


def scan_options(match: Key | None, count: int | None) -> tuple[Any, ...]:
    out: tuple[Any, ...] = ()
    if match is not None:
        out += (b"MATCH", match)
    if count is not None:
        out += (b"COUNT", count)
    return out


def limit(offset: int | None, num: int | None) -> tuple[Any, ...]:
    if (offset is None) != (num is None):
        raise DataError("offset and num must both be given, or neither")
    return () if offset is None else (b"LIMIT", offset, num)


# -- replies ----------------------------------------------------------------


def text(reply: Any) -> Any:
    """bytes -> str (utf-8); anything else unchanged."""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def ok(reply: Any) -> bool:
    """A status reply: True for OK (also when a RESP3 server says ``true``)."""
    return reply is True or reply in (b"OK", "OK")


def ok_or_none(reply: Any) -> bool | None:
    """SET without GET: None when NX/XX prevented it, True when it was set."""
    return None if reply is None else ok(reply)


def empty_list(reply: Any) -> list[Any]:
    return []


def pong(reply: Any) -> bool:
    return reply in (b"PONG", "PONG")


def to_bool(reply: Any) -> bool:
    """An integer (0/1) or RESP3 boolean reply."""
    return bool(reply)


def bool_list(reply: Any) -> list[bool]:
    return [bool(x) for x in reply]


def to_float(reply: Any) -> float:
    """A RESP3 double, or its RESP2 bulk spelling (``b"1.5"``, ``b"inf"``)."""
    return float(reply)


def float_or_none(reply: Any) -> float | None:
    return None if reply is None else float(reply)


def float_list(reply: Any) -> list[float | None]:
    return [None if x is None else float(x) for x in reply]


def to_set(reply: Any) -> set[Any]:
    """A RESP3 set arrives as a set; the RESP2 array becomes one."""
    return reply if isinstance(reply, set) else set(reply or ())


def to_dict(reply: Any) -> dict[Any, Any]:
    """A RESP3 map, or the flat ``k1, v1, k2, v2`` RESP2 array, as a dict."""
    if isinstance(reply, dict):
        return reply
    if not reply:
        return {}
    if isinstance(reply[0], (list, tuple)):  # a map whose keys could not hash
        return {k: v for k, v in reply}
    it = iter(reply)
    return dict(zip(it, it))


def str_dict(reply: Any) -> dict[str, Any]:
    """CONFIG GET: a dict of str keys and str values, whatever the wire said."""
    return {text(k): text(v) for k, v in to_dict(reply).items()}


def tuple_or_none(reply: Any) -> tuple[Any, ...] | None:
    return None if reply is None else tuple(reply)


def resp2_score(score: Any, like: Any) -> Any:
    """A score as RESP2 spells it (what redis-py hands ``score_cast_func``):
    bytes, or str when the member is str (decode_responses)."""
    if not isinstance(score, (bytes, str)):
        score = f"{score:.17g}"
        if isinstance(like, bytes):
            score = score.encode()
    return score


def flat_raw_pairs(reply: Any) -> list[Any]:
    """``m1, s1, m2, s2`` with RESP2-spelled scores (replies redis-py leaves raw)."""
    if reply and isinstance(reply[0], (list, tuple)):
        return [x for m, sc in reply for x in (m, resp2_score(sc, m))]
    return list(reply or ())


def score_pairs(cast: Callable[[Any], Any] = float) -> Callable[[Any], list[tuple[Any, Any]]]:
    """Members with scores as ``[(member, score)]``.

    RESP3 nests the pairs (``[[m, 1.0], ...]``) except ZPOPMIN/ZPOPMAX without
    a count, which gives one flat ``[m, 1.0]``; RESP2 always sends a flat
    ``[m, b"1", ...]``. A member is never an array, so the first element
    tells the shapes apart.
    """

    def post(reply: Any) -> list[tuple[Any, Any]]:
        if not reply:
            return []
        if isinstance(reply[0], (list, tuple)):
            pairs = [(m, s) for m, s in reply]
        else:
            it = iter(reply)
            pairs = list(zip(it, it))
        if cast is float:
            return [(m, float(s)) for m, s in pairs]
        safe = _safe_cast(cast)
        return [(m, safe(resp2_score(s, m))) for m, s in pairs]

    return post


def _safe_cast(cast: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """As redis-py 8: a cast that refuses the score as spelt (``int`` of
    ``b"1.5"``) is given ``float(score)`` instead."""

    def safe(score: Any) -> Any:
        try:
            return cast(score)
        except (ValueError, TypeError):
            return cast(float(score))

    return safe


def rank_with_score(cast: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """ZRANK ... WITHSCORE: ``[rank, score]`` or None. A ``cast`` other than
    float gets the score as RESP2 spells it, as in redis-py: as sent over
    RESP2, bytes over RESP3 (redis-py re-encodes it so, whatever decoding)."""
    if cast is float:
        return lambda r: None if r is None else [r[0], float(r[1])]
    safe = _safe_cast(cast)
    return lambda r: None if r is None else [r[0], safe(resp2_score(r[1], b""))]


def bzpop(reply: Any) -> tuple[Any, Any, float] | None:
    """BZPOPMIN/BZPOPMAX: ``(key, member, score)`` or None on timeout."""
    return None if reply is None else (reply[0], reply[1], float(reply[2]))


def scan(reply: Any) -> tuple[int, list[Any]]:
    return int(reply[0]), list(reply[1])


def hscan(reply: Any) -> tuple[int, dict[Any, Any]]:
    return int(reply[0]), to_dict(reply[1])


def zscan(cast: Callable[[Any], Any]) -> Callable[[Any], tuple[int, list[tuple[Any, Any]]]]:
    pairs = score_pairs(cast)
    return lambda r: (int(r[0]), pairs(r[1]))


def time_pair(reply: Any) -> tuple[int, int]:
    return int(reply[0]), int(reply[1])


def info(reply: Any) -> dict[str, Any]:
    """INFO text as a dict, parsed the way redis-py does it.

    ``key:value`` lines; values become int, float, a dict for ``a=1,b=2``
    and a list for ``a,b``; ``module:`` lines collect under ``modules``.
    """
    result: dict[str, Any] = {}
    for line in text(reply).splitlines():
        if not line or line.startswith("#"):
            continue
        if ":" not in line:
            result.setdefault("__raw__", []).append(line)
            continue
        key, value = line.split(":", 1)
        if key == "cmdstat_host":
            key, value = line.rsplit(":", 1)
        if key == "module":
            result.setdefault("modules", []).append(_info_value(value))
        else:
            result[key] = _info_value(value)
    return result


def _info_value(value: str) -> Any:
    if "," not in value and "=" not in value:
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return value
    if "=" not in value:
        return [_info_value(v) for v in value.split(",") if v]
    sub: dict[str, Any] = {}
    for item in filter(None, value.split(",")):
        if "=" in item:
            k, v = item.rsplit("=", 1)
            sub[k] = _info_value(v)
        else:
            sub[item] = True
    return sub


# -- commands a shared, pipelined connection must refuse ---------------------

_DEDICATED = "use client.dedicated() for blocking commands"
_PUBSUB = "pub/sub is not supported yet by iokernel; use redis-py for {}"
_TXN = (
    "{} needs a connection of its own: use client.pipeline(transaction=True), "
    "or client.dedicated() for WATCH-based optimistic locking"
)

#: Command name (upper case; two words for subcommands) -> why it cannot run
#: on the connection that all callers share, and what to do instead.
#: XREAD and XREADGROUP block only when given BLOCK, so they are not listed:
#: :func:`shared_connection_refusal` looks at their arguments.
REFUSED_ON_SHARED: dict[str, str] = {
    **{
        name: f"{name} blocks the connection that all callers share; {_DEDICATED}"
        for name in (
            "BLPOP",
            "BRPOP",
            "BLMOVE",
            "BRPOPLPUSH",
            "BZPOPMIN",
            "BZPOPMAX",
            "BLMPOP",
            "BZMPOP",
            "WAIT",
            "WAITAOF",
        )
    },
    **{name: _TXN.format(name) for name in ("MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH")},
    **{
        name: _PUBSUB.format(name)
        for name in (
            "SUBSCRIBE",
            "PSUBSCRIBE",
            "SSUBSCRIBE",
            "UNSUBSCRIBE",
            "PUNSUBSCRIBE",
            "SUNSUBSCRIBE",
        )
    },
    "MONITOR": "MONITOR turns the connection into an endless stream; "
    "iokernel does not support it, use redis-cli monitor",
    "SELECT": "SELECT changes the database of the connection that all callers share: "
    "put the database in the URL (redis://host:port/2) and make a client per database",
    "QUIT": "QUIT would close the connection that all callers share; use client.close()",
    "RESET": "RESET would wipe the state of the connection that all callers share; "
    "make a new client instead",
    "CLIENT REPLY": "CLIENT REPLY would stop the replies that iokernel matches to "
    "callers; send the command and ignore its result instead",
    "CLIENT TRACKING": "CLIENT TRACKING turns on invalidation pushes on the connection "
    "that all callers share; iokernel does not support client-side caching yet",
    "HELLO": "HELLO renegotiates the connection that all callers share; iokernel picks "
    "the protocol itself: put credentials in the URL (redis://user:password@host:port/0)",
    "AUTH": "AUTH changes the identity of the connection that all callers share: "
    "put credentials in the URL (redis://user:password@host:port/0)",
}

_TWO_WORD = {"CLIENT"}


def _word(arg: Any) -> str:
    if isinstance(arg, (bytes, bytearray, memoryview)):
        return bytes(arg).decode("utf-8", "replace").upper()
    return str(arg).upper()


def shared_connection_refusal(args: Sequence[Any]) -> str | None:
    """Why the command ``args`` must not run on a shared connection, or None.

    The message names the command and what to use instead; the client raises
    it before anything is sent.
    """
    if not args:
        return None
    name = _word(args[0])
    if name in _TWO_WORD and len(args) > 1:
        message = REFUSED_ON_SHARED.get(f"{name} {_word(args[1])}")
        if message is not None:
            return message
    message = REFUSED_ON_SHARED.get(name)
    if message is None and name in ("XREAD", "XREADGROUP") and _xread_blocks(name, args):
        message = f"{name} with BLOCK blocks the connection that all callers share; {_DEDICATED}"
    return message


def _xread_blocks(name: str, args: Sequence[Any]) -> bool:
    return xread_block_ms(args) is not None


def xread_block_ms(args: Sequence[Any]) -> float | None:
    """The BLOCK argument (milliseconds) of an XREAD/XREADGROUP, or None.

    XREAD [COUNT n] [BLOCK ms] STREAMS key... id...
    XREADGROUP GROUP group consumer [COUNT n] [BLOCK ms] [NOACK] STREAMS ...
    Only options before STREAMS count: a key may well be named "block".
    """
    if not args:
        return None
    i = 4 if _word(args[0]) == "XREADGROUP" else 1
    while i < len(args):
        word = _word(args[i])
        if word == "STREAMS":
            return None
        if word == "BLOCK":
            try:
                return float(args[i + 1])
            except (IndexError, TypeError, ValueError):
                return 0.0
        i += 2 if word == "COUNT" else 1
    return None
