"""More key, hash, list, set and sorted-set commands: COPY/DUMP/RESTORE,
HMSET/HRANDFIELD, LMPOP, SINTERCARD, LCS, the ZUNION/ZINTER/ZDIFF family and
the lexicographic ZRANGEBYLEX family, with redis-py's names, arguments and
reply shapes (see _redis_commands).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import DataError
from ._redis_commands_support import (
    Caller,
    Key,
    Keys,
    Value,
    flat_raw_pairs,
    keys_and_args,
    ok,
    resp2_score,
    score_pairs,
)


def _keys_weights(keys: Sequence[Key] | Mapping[Key, float]) -> list[Any]:
    if isinstance(keys, Mapping):
        return [len(keys), *keys.keys(), b"WEIGHTS", *keys.values()]
    keys = [keys] if isinstance(keys, (bytes, str, memoryview)) else list(keys)
    return [len(keys), *keys]


def _aggregate(aggregate: str | None) -> list[Any]:
    if aggregate is None:
        return []
    if aggregate.upper() not in ("SUM", "MIN", "MAX"):
        raise DataError("aggregate can be sum, min or max.")
    return [b"AGGREGATE", aggregate]


def _zmpop(reply: Any) -> Any:
    if reply is None:
        return None
    return [reply[0], [[m, resp2_score(s, m)] for m, s in reply[1]]]


def _hrandfield(withvalues: bool) -> Any:
    if not withvalues:
        return None

    def post(reply: Any) -> Any:
        if reply and isinstance(reply[0], (list, tuple)):  # RESP3 nests the pairs
            return [x for pair in reply for x in pair]
        return reply

    return post




class KeysZsetsMoreCommands(Caller):
    """COPY ... ZRANGESTORE."""

    # -- keys ------------------------------------------------------------------

    def copy(
        self, source: Key, destination: Key, destination_db: int | str | None = None,
        replace: bool = False,
    ) -> Any:
        pieces: list[Any] = [source, destination]
        if destination_db is not None:
            pieces += [b"DB", destination_db]
        if replace:
            pieces.append(b"REPLACE")
        return self._call((b"COPY", *pieces), bool)

    def dump(self, name: Key) -> Any:
        """The serialized value (always bytes, even with decode_responses,
        in pipelines too), None if the key is missing."""
        return self._call_undecoded((b"DUMP", name))

    def restore(
        self, name: Key, ttl: float, value: bytes, replace: bool = False, absttl: bool = False,
        idletime: int | None = None, frequency: int | None = None,
    ) -> Any:
        pieces: list[Any] = [name, ttl, value]
        if replace:
            pieces.append(b"REPLACE")
        if absttl:
            pieces.append(b"ABSTTL")
        if idletime is not None:
            if not isinstance(idletime, int):
                raise DataError("idletimemust be an integer")
            pieces += [b"IDLETIME", idletime]
        if frequency is not None:
            if not isinstance(frequency, int):
                raise DataError("frequency must be an integer")
            pieces += [b"FREQ", frequency]
        return self._call((b"RESTORE", *pieces), ok)

    def move(self, name: Key, db: int) -> Any:
        return self._call((b"MOVE", name, db), bool)

    def expiretime(self, key: Key) -> Any:
        return self._call((b"EXPIRETIME", key))

    def pexpiretime(self, key: Key) -> Any:
        return self._call((b"PEXPIRETIME", key))

    def substr(self, name: Key, start: int, end: int = -1) -> Any:
        return self._call((b"SUBSTR", name, start, end))

    def lcs(
        self, key1: Key, key2: Key, len: bool = False, idx: bool = False,
        minmatchlen: int = 0, withmatchlen: bool = False,
    ) -> Any:
        pieces: list[Any] = [key1, key2]
        if len:
            pieces.append(b"LEN")
        if idx:
            pieces.append(b"IDX")
        if minmatchlen:
            pieces += [b"MINMATCHLEN", minmatchlen]
        if withmatchlen:
            pieces.append(b"WITHMATCHLEN")
        return self._call((b"LCS", *pieces), _lcs)

    # -- hashes, lists, sets ---------------------------------------------------

    def hmset(self, name: Key, mapping: Mapping[Key, Value]) -> Any:
        """Deprecated in redis-py too (use ``hset(name, mapping=...)``)."""
        warnings.warn(
            f"{type(self).__name__}.hmset() is deprecated. Use {type(self).__name__}.hset() instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        if not mapping:
            raise DataError("'hmset' with 'mapping' of length 0")
        return self._call((b"HMSET", name, *(x for pair in mapping.items() for x in pair)), ok)

    def hrandfield(self, key: Key, count: int | None = None, withvalues: bool = False) -> Any:
        pieces: list[Any] = [] if count is None else [count]
        if withvalues:
            pieces.append(b"WITHVALUES")
        return self._call((b"HRANDFIELD", key, *pieces), _hrandfield(withvalues))

    def lmpop(self, num_keys: int, *args: Key, direction: str, count: int | None = 1) -> Any:
        """``[key, [elements]]`` or None."""
        pieces: list[Any] = [num_keys, *args, direction]
        if count != 1:
            pieces += [b"COUNT", count]
        return self._call((b"LMPOP", *pieces))

    def blmpop(
        self, timeout: float, numkeys: int, *args: Key, direction: str, count: int | None = 1
    ) -> Any:
        return self._call((b"BLMPOP", timeout, numkeys, *args, direction, b"COUNT", count))

    def sintercard(self, numkeys: int, keys: Sequence[Key], limit: int = 0) -> Any:
        return self._call((b"SINTERCARD", numkeys, *keys, b"LIMIT", limit))

    # -- sorted sets -----------------------------------------------------------

    def zunionstore(
        self, dest: Key, keys: Sequence[Key] | Mapping[Key, float], aggregate: str | None = None
    ) -> Any:
        return self._call((b"ZUNIONSTORE", dest, *_keys_weights(keys), *_aggregate(aggregate)))

    def zinterstore(
        self, dest: Key, keys: Sequence[Key] | Mapping[Key, float], aggregate: str | None = None
    ) -> Any:
        return self._call((b"ZINTERSTORE", dest, *_keys_weights(keys), *_aggregate(aggregate)))

    def zunion(
        self, keys: Sequence[Key] | Mapping[Key, float], aggregate: str | None = None,
        withscores: bool = False, score_cast_func: Any = float,
    ) -> Any:
        return self._zcombine(b"ZUNION", keys, aggregate, withscores, score_cast_func)

    def zinter(
        self, keys: Sequence[Key] | Mapping[Key, float], aggregate: str | None = None,
        withscores: bool = False, score_cast_func: Any = float,
    ) -> Any:
        return self._zcombine(b"ZINTER", keys, aggregate, withscores, score_cast_func)

    def _zcombine(self, cmd: bytes, keys: Any, aggregate: Any, withscores: bool, cast: Any) -> Any:
        pieces = [*_keys_weights(keys), *_aggregate(aggregate)]
        if withscores:
            return self._call((cmd, *pieces, b"WITHSCORES"), score_pairs(cast))
        return self._call((cmd, *pieces))

    def zdiff(self, keys: Keys, withscores: bool = False) -> Any:
        keys = keys_and_args(keys, ())
        if withscores:
            return self._call((b"ZDIFF", len(keys), *keys, b"WITHSCORES"), flat_raw_pairs)
        return self._call((b"ZDIFF", len(keys), *keys))

    def zdiffstore(self, dest: Key, keys: Keys) -> Any:
        keys = keys_and_args(keys, ())
        return self._call((b"ZDIFFSTORE", dest, len(keys), *keys))

    def zintercard(self, numkeys: int, keys: Sequence[Key], limit: int = 0) -> Any:
        return self._call((b"ZINTERCARD", numkeys, *keys, b"LIMIT", limit))

    def zrangebylex(
        self, name: Key, min: Value, max: Value, start: int | None = None, num: int | None = None
    ) -> Any:
        return self._call((b"ZRANGEBYLEX", name, min, max, *_limit(start, num)))

    def zrevrangebylex(
        self, name: Key, max: Value, min: Value, start: int | None = None, num: int | None = None
    ) -> Any:
        return self._call((b"ZREVRANGEBYLEX", name, max, min, *_limit(start, num)))

    def zlexcount(self, name: Key, min: Value, max: Value) -> Any:
        return self._call((b"ZLEXCOUNT", name, min, max))

    def zremrangebylex(self, name: Key, min: Value, max: Value) -> Any:
        return self._call((b"ZREMRANGEBYLEX", name, min, max))

    def zrandmember(self, key: Key, count: int | None = None, withscores: bool = False) -> Any:
        pieces: list[Any] = [] if count is None else [count]
        if withscores:
            pieces.append(b"WITHSCORES")
            return self._call((b"ZRANDMEMBER", key, *pieces), flat_raw_pairs)
        return self._call((b"ZRANDMEMBER", key, *pieces))

    def zrangestore(
        self, dest: Key, name: Key, start: Any, end: Any, byscore: bool = False,
        bylex: bool = False, desc: bool = False, offset: int | None = None, num: int | None = None,
    ) -> Any:
        if byscore and bylex:
            raise DataError("``byscore`` and ``bylex`` can not be specified together.")
        if (offset is not None and num is None) or (num is not None and offset is None):
            raise DataError("``offset`` and ``num`` must both be specified.")
        if bylex and desc:
            start, end = end, start
        pieces: list[Any] = [dest, name, start, end]
        if byscore:
            pieces.append(b"BYSCORE")
        if bylex:
            pieces.append(b"BYLEX")
        if desc:
            pieces.append(b"REV")
        if offset is not None:
            pieces += [b"LIMIT", offset, num]
        return self._call((b"ZRANGESTORE", *pieces))

    def zmpop(
        self, num_keys: int, keys: Sequence[Key], min: bool = False, max: bool = False, count: int = 1
    ) -> Any:
        return self._call((b"ZMPOP", num_keys, *keys, *_minmax(min, max), b"COUNT", count), _zmpop)

    def bzmpop(
        self, timeout: float, numkeys: int, keys: Sequence[Key], min: bool = False,
        max: bool = False, count: int = 1,
    ) -> Any:
        args = (b"BZMPOP", timeout, numkeys, *keys, *_minmax(min, max), b"COUNT", count)
        return self._call(args, _zmpop)


def _lcs(reply: Any) -> Any:
    """LCS IDX: RESP3 sends a map; redis-py gives RESP2's flat list."""
    if isinstance(reply, dict):
        return [x for pair in reply.items() for x in pair]
    return reply


def _minmax(min_: bool, max_: bool) -> list[bytes]:
    if min_ == max_:
        raise DataError("Either min or max, but not both must be set")
    return [b"MIN" if min_ else b"MAX"]


def _limit(start: int | None, num: int | None) -> list[Any]:
    if (start is None) != (num is None):
        raise DataError("``start`` and ``num`` must both be specified")
    return [] if start is None else [b"LIMIT", start, num]

