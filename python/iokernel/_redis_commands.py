"""Typed Redis commands, written once for the blocking client, the asyncio
client and pipelines.

Each method only builds the argument tuple of one command and names the
function that turns the raw reply into what redis-py users expect, then hands
both to ``self._call(args, post)``. What happens next belongs to the class
that mixes :class:`Commands` in:

* ``redis.Client._call`` sends the command and returns ``post(raw)``;
* ``redis.AsyncClient._call`` returns an awaitable resolving to ``post(raw)``;
* ``Pipeline._call`` queues ``(args, post)`` and returns the pipeline, so
  calls chain and ``execute()`` applies each ``post`` to its reply.

So there is exactly one copy of every command: no sync/async twins to keep in
step (STYLE.md §6). Only what cannot be shared without ``await`` is written
twice, and kept tiny: the ``*scan_iter`` loops (:class:`SyncIterCommands`,
:class:`AsyncIterCommands`) and :class:`Script`/:class:`AsyncScript`, which
share their argument building.

Reply parsers accept both RESP2 and RESP3 shapes and both bytes and str
(``decode_responses``); see :mod:`iokernel._redis_commands_support`.
Invalid option combinations raise ``ValueError`` before anything is sent.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from typing import Any

from . import _redis_commands_support as s
from ._errors import DataError
from ._redis_cmd_functions import FunctionAndConnectionCommands
from ._redis_cmd_geo_bits import BitAndCountCommands, BitFieldOperation, GeoCommands
from ._redis_cmd_keys_zsets import KeysZsetsMoreCommands
from ._redis_cmd_server import ServerMoreCommands
from ._redis_cmd_streams import StreamCommands
from ._redis_commands_more import AsyncScript, Cast, Script, ServerCommands, SortedSetCommands
from ._redis_commands_support import (
    REFUSED_ON_SHARED,
    AbsExpiry,
    Expiry,
    Key,
    Keys,
    Timeout,
    Value,
    shared_connection_refusal,
)

__all__ = [
    "REFUSED_ON_SHARED",
    "AsyncIterCommands",
    "AsyncScript",
    "BitFieldOperation",
    "Commands",
    "Script",
    "SyncIterCommands",
    "shared_connection_refusal",
]


class Commands(SortedSetCommands, ServerCommands, StreamCommands, GeoCommands,
               BitAndCountCommands, KeysZsetsMoreCommands, ServerMoreCommands,
               FunctionAndConnectionCommands):
    """Mixin. Subclasses implement
    ``_call(self, args: tuple[Any, ...], post: Callable[[Any], Any] | None = None)``.

    Return values are documented as the blocking client sees them; the
    asyncio client returns awaitables of the same, pipelines return
    themselves.

    ``_queues_calls`` tells :class:`Script` whether ``_call`` only queues (so
    a NOSCRIPT error cannot be caught and retried): true for a bare
    ``Commands`` (pipelines), false for the clients, which mix in
    :class:`SyncIterCommands` or :class:`AsyncIterCommands`.
    """

    _queues_calls = True

    # -- strings -------------------------------------------------------------

    def get(self, name: Key) -> Any:
        return self._call((b"GET", name))

    def set(
        self,
        name: Key,
        value: Value,
        ex: Expiry | None = None,
        px: Expiry | None = None,
        nx: bool = False,
        xx: bool = False,
        keepttl: bool = False,
        get: bool = False,
        exat: AbsExpiry | None = None,
        pxat: AbsExpiry | None = None,
    ) -> Any:
        """True; None when NX/XX prevented it; the old value with ``get=True``."""
        if nx and xx:
            raise DataError("nx and xx are mutually exclusive")
        expiry = s.expire_flags(ex, px, exat, pxat)
        if keepttl and expiry:
            raise DataError("keepttl cannot be combined with ex, px, exat or pxat")
        args = (b"SET", name, value, *s.flags(nx=nx, xx=xx, get=get), *expiry)
        return self._call(args + s.flags(keepttl=keepttl), None if get else s.ok_or_none)

    def mget(self, keys: Keys, *args: Key) -> Any:
        names = s.keys_and_args(keys, args)
        if not names:  # redis-py answers [] without asking the server
            return self._call((b"PING",), s.empty_list)
        return self._call((b"MGET", *names))

    def mset(self, mapping: Mapping[Key, Value]) -> Any:
        return self._call((b"MSET", *s.mapping_pairs(mapping)), s.ok)

    def msetnx(self, mapping: Mapping[Key, Value]) -> Any:
        return self._call((b"MSETNX", *s.mapping_pairs(mapping)), s.to_bool)

    def setnx(self, name: Key, value: Value) -> Any:
        return self._call((b"SETNX", name, value), s.to_bool)

    def setex(self, name: Key, time: Expiry, value: Value) -> Any:
        return self._call((b"SETEX", name, s.seconds(time), value), s.ok)

    def psetex(self, name: Key, time_ms: Expiry, value: Value) -> Any:
        return self._call((b"PSETEX", name, s.millis(time_ms), value), s.ok)

    def getset(self, name: Key, value: Value) -> Any:
        return self._call((b"GETSET", name, value))

    def getdel(self, name: Key) -> Any:
        return self._call((b"GETDEL", name))

    def getex(
        self,
        name: Key,
        ex: Expiry | None = None,
        px: Expiry | None = None,
        exat: AbsExpiry | None = None,
        pxat: AbsExpiry | None = None,
        persist: bool = False,
    ) -> Any:
        expiry = s.expire_flags(ex, px, exat, pxat)
        if persist and expiry:
            raise DataError("persist cannot be combined with ex, px, exat or pxat")
        return self._call((b"GETEX", name, *expiry, *s.flags(persist=persist)))

    def append(self, key: Key, value: Value) -> Any:
        return self._call((b"APPEND", key, value))

    def strlen(self, name: Key) -> Any:
        return self._call((b"STRLEN", name))

    def getrange(self, key: Key, start: int, end: int) -> Any:
        return self._call((b"GETRANGE", key, start, end))

    def setrange(self, name: Key, offset: int, value: Value) -> Any:
        return self._call((b"SETRANGE", name, offset, value))

    def getbit(self, name: Key, offset: int) -> Any:
        return self._call((b"GETBIT", name, offset))

    def setbit(self, name: Key, offset: int, value: int | bool) -> Any:
        return self._call((b"SETBIT", name, offset, int(value)))

    def bitcount(
        self, key: Key, start: int | None = None, end: int | None = None, mode: str | None = None
    ) -> Any:
        """``mode``: "BYTE" (default) or "BIT" for the unit of start/end."""
        if (start is None) != (end is None):
            raise DataError("Both start and end must be specified")
        tail = () if start is None else (start, end, *(() if mode is None else (mode,)))
        return self._call((b"BITCOUNT", key, *tail))

    # -- counters ------------------------------------------------------------

    def incr(self, name: Key, amount: int = 1) -> Any:
        return self._call((b"INCRBY", name, amount))

    incrby = incr

    def decr(self, name: Key, amount: int = 1) -> Any:
        return self._call((b"DECRBY", name, amount))

    decrby = decr

    def incrbyfloat(self, name: Key, amount: float = 1.0) -> Any:
        return self._call((b"INCRBYFLOAT", name, amount), s.to_float)

    # -- keys ----------------------------------------------------------------

    def delete(self, *names: Key) -> Any:
        return self._call((b"DEL", *names))

    def unlink(self, *names: Key) -> Any:
        return self._call((b"UNLINK", *names))

    def exists(self, *names: Key) -> Any:
        """How many of ``names`` exist (a key named twice counts twice)."""
        return self._call((b"EXISTS", *names))

    def touch(self, *names: Key) -> Any:
        return self._call((b"TOUCH", *names))

    def expire(
        self,
        name: Key,
        time: Expiry,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Any:
        flags = s.flags(nx=nx, xx=xx, gt=gt, lt=lt)
        return self._call((b"EXPIRE", name, s.seconds(time), *flags), s.to_bool)

    def pexpire(
        self,
        name: Key,
        time: Expiry,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Any:
        flags = s.flags(nx=nx, xx=xx, gt=gt, lt=lt)
        return self._call((b"PEXPIRE", name, s.millis(time), *flags), s.to_bool)

    def expireat(
        self,
        name: Key,
        when: AbsExpiry,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Any:
        flags = s.flags(nx=nx, xx=xx, gt=gt, lt=lt)
        return self._call((b"EXPIREAT", name, s.unix_seconds(when), *flags), s.to_bool)

    def pexpireat(
        self,
        name: Key,
        when: AbsExpiry,
        nx: bool = False,
        xx: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Any:
        flags = s.flags(nx=nx, xx=xx, gt=gt, lt=lt)
        return self._call((b"PEXPIREAT", name, s.unix_millis(when), *flags), s.to_bool)

    def ttl(self, name: Key) -> Any:
        return self._call((b"TTL", name))

    def pttl(self, name: Key) -> Any:
        return self._call((b"PTTL", name))

    def persist(self, name: Key) -> Any:
        return self._call((b"PERSIST", name), s.to_bool)

    def type(self, name: Key) -> Any:
        """The type name as the server spells it (bytes, or str when decoding)."""
        return self._call((b"TYPE", name))

    def rename(self, src: Key, dst: Key) -> Any:
        return self._call((b"RENAME", src, dst), s.ok)

    def renamenx(self, src: Key, dst: Key) -> Any:
        return self._call((b"RENAMENX", src, dst), s.to_bool)

    def keys(self, pattern: Key = "*") -> Any:
        return self._call((b"KEYS", pattern))

    def randomkey(self) -> Any:
        return self._call((b"RANDOMKEY",))

    def dbsize(self) -> Any:
        return self._call((b"DBSIZE",))

    def flushdb(self, asynchronous: bool = False) -> Any:
        return self._call((b"FLUSHDB", *s.flags(async_=asynchronous)), s.ok)

    def flushall(self, asynchronous: bool = False) -> Any:
        return self._call((b"FLUSHALL", *s.flags(async_=asynchronous)), s.ok)

    def scan(
        self,
        cursor: int = 0,
        match: Key | None = None,
        count: int | None = None,
        _type: str | None = None,
    ) -> Any:
        """``(next_cursor, keys)``; the iteration is over when the cursor is 0."""
        opts = s.scan_options(match, count) + (() if _type is None else (b"TYPE", _type))
        return self._call((b"SCAN", cursor, *opts), s.scan)

    # -- hashes --------------------------------------------------------------

    def hset(
        self,
        name: Key,
        key: Key | None = None,
        value: Value | None = None,
        mapping: Mapping[Key, Value] | None = None,
        items: Sequence[Any] | None = None,
    ) -> Any:
        """Set fields; returns how many were new."""
        pieces: tuple[Any, ...] = () if key is None else (key, value)
        pieces += tuple(items or ()) + s.mapping_pairs(mapping or {})
        if not pieces:
            raise DataError("hset needs key and value, mapping or items")
        return self._call((b"HSET", name, *pieces))

    def hsetnx(self, name: Key, key: Key, value: Value) -> Any:
        return self._call((b"HSETNX", name, key, value), s.to_bool)

    def hget(self, name: Key, key: Key) -> Any:
        return self._call((b"HGET", name, key))

    def hmget(self, name: Key, keys: Keys, *args: Key) -> Any:
        return self._call((b"HMGET", name, *s.keys_and_args(keys, args)))

    def hgetall(self, name: Key) -> Any:
        return self._call((b"HGETALL", name), s.to_dict)

    def hincrby(self, name: Key, key: Key, amount: int = 1) -> Any:
        return self._call((b"HINCRBY", name, key, amount))

    def hincrbyfloat(self, name: Key, key: Key, amount: float = 1.0) -> Any:
        return self._call((b"HINCRBYFLOAT", name, key, amount), s.to_float)

    def hdel(self, name: Key, *keys: Key) -> Any:
        return self._call((b"HDEL", name, *keys))

    def hexists(self, name: Key, key: Key) -> Any:
        return self._call((b"HEXISTS", name, key), s.to_bool)

    def hkeys(self, name: Key) -> Any:
        return self._call((b"HKEYS", name))

    def hvals(self, name: Key) -> Any:
        return self._call((b"HVALS", name))

    def hlen(self, name: Key) -> Any:
        return self._call((b"HLEN", name))

    def hstrlen(self, name: Key, key: Key) -> Any:
        return self._call((b"HSTRLEN", name, key))

    def hscan(
        self, name: Key, cursor: int = 0, match: Key | None = None, count: int | None = None
    ) -> Any:
        """``(next_cursor, {field: value})``."""
        return self._call((b"HSCAN", name, cursor, *s.scan_options(match, count)), s.hscan)

    # -- lists ---------------------------------------------------------------

    def lpush(self, name: Key, *values: Value) -> Any:
        return self._call((b"LPUSH", name, *values))

    def rpush(self, name: Key, *values: Value) -> Any:
        return self._call((b"RPUSH", name, *values))

    def lpushx(self, name: Key, *values: Value) -> Any:
        return self._call((b"LPUSHX", name, *values))

    def rpushx(self, name: Key, *values: Value) -> Any:
        return self._call((b"RPUSHX", name, *values))

    def lpop(self, name: Key, count: int | None = None) -> Any:
        """One value (or None); with ``count``, a list (or None)."""
        return self._call((b"LPOP", name) + (() if count is None else (count,)))

    def rpop(self, name: Key, count: int | None = None) -> Any:
        return self._call((b"RPOP", name) + (() if count is None else (count,)))

    def lrange(self, name: Key, start: int, end: int) -> Any:
        return self._call((b"LRANGE", name, start, end))

    def llen(self, name: Key) -> Any:
        return self._call((b"LLEN", name))

    def lindex(self, name: Key, index: int) -> Any:
        return self._call((b"LINDEX", name, index))

    def lset(self, name: Key, index: int, value: Value) -> Any:
        return self._call((b"LSET", name, index, value), s.ok)

    def lrem(self, name: Key, count: int, value: Value) -> Any:
        return self._call((b"LREM", name, count, value))

    def ltrim(self, name: Key, start: int, end: int) -> Any:
        return self._call((b"LTRIM", name, start, end), s.ok)

    def linsert(self, name: Key, where: str, refvalue: Value, value: Value) -> Any:
        """``where`` is "BEFORE" or "AFTER"."""
        return self._call((b"LINSERT", name, where, refvalue, value))

    def lpos(
        self,
        name: Key,
        value: Value,
        rank: int | None = None,
        count: int | None = None,
        maxlen: int | None = None,
    ) -> Any:
        opts: tuple[Any, ...] = () if rank is None else (b"RANK", rank)
        opts += () if count is None else (b"COUNT", count)
        opts += () if maxlen is None else (b"MAXLEN", maxlen)
        return self._call((b"LPOS", name, value, *opts))

    def lmove(
        self, first_list: Key, second_list: Key, src: str = "LEFT", dest: str = "RIGHT"
    ) -> Any:
        return self._call((b"LMOVE", first_list, second_list, src, dest))

    def rpoplpush(self, src: Key, dst: Key) -> Any:
        return self._call((b"RPOPLPUSH", src, dst))

    # Blocking pops: the client routes these to a dedicated connection.
    # ``timeout`` is in seconds (fractions allowed); 0 or None waits forever.

    def blpop(self, keys: Keys, timeout: Timeout = 0) -> Any:
        """``(key, value)``, or None on timeout."""
        args = (b"BLPOP", *s.keys_and_args(keys, ()), s.timeout_seconds(timeout))
        return self._call(args, s.tuple_or_none)

    def brpop(self, keys: Keys, timeout: Timeout = 0) -> Any:
        args = (b"BRPOP", *s.keys_and_args(keys, ()), s.timeout_seconds(timeout))
        return self._call(args, s.tuple_or_none)

    def brpoplpush(self, src: Key, dst: Key, timeout: Timeout = 0) -> Any:
        return self._call((b"BRPOPLPUSH", src, dst, s.timeout_seconds(timeout)))

    def blmove(
        self,
        first_list: Key,
        second_list: Key,
        timeout: Timeout,
        src: str = "LEFT",
        dest: str = "RIGHT",
    ) -> Any:
        args = (b"BLMOVE", first_list, second_list, src, dest, s.timeout_seconds(timeout))
        return self._call(args)

    # -- sets ----------------------------------------------------------------

    def sadd(self, name: Key, *values: Value) -> Any:
        return self._call((b"SADD", name, *values))

    def srem(self, name: Key, *values: Value) -> Any:
        return self._call((b"SREM", name, *values))

    def smembers(self, name: Key) -> Any:
        return self._call((b"SMEMBERS", name), s.to_set)

    def sismember(self, name: Key, value: Value) -> Any:
        return self._call((b"SISMEMBER", name, value), s.to_bool)

    def smismember(self, name: Key, values: Iterable[Value], *args: Value) -> Any:
        return self._call((b"SMISMEMBER", name, *s.keys_and_args(values, args)), s.bool_list)

    def scard(self, name: Key) -> Any:
        return self._call((b"SCARD", name))

    def sinter(self, keys: Keys, *args: Key) -> Any:
        return self._call((b"SINTER", *s.keys_and_args(keys, args)), s.to_set)

    def sunion(self, keys: Keys, *args: Key) -> Any:
        return self._call((b"SUNION", *s.keys_and_args(keys, args)), s.to_set)

    def sdiff(self, keys: Keys, *args: Key) -> Any:
        return self._call((b"SDIFF", *s.keys_and_args(keys, args)), s.to_set)

    def sinterstore(self, dest: Key, keys: Keys, *args: Key) -> Any:
        return self._call((b"SINTERSTORE", dest, *s.keys_and_args(keys, args)))

    def sunionstore(self, dest: Key, keys: Keys, *args: Key) -> Any:
        return self._call((b"SUNIONSTORE", dest, *s.keys_and_args(keys, args)))

    def sdiffstore(self, dest: Key, keys: Keys, *args: Key) -> Any:
        return self._call((b"SDIFFSTORE", dest, *s.keys_and_args(keys, args)))

    def smove(self, src: Key, dst: Key, value: Value) -> Any:
        return self._call((b"SMOVE", src, dst, value), s.to_bool)

    def spop(self, name: Key, count: int | None = None) -> Any:
        """One member (or None); with ``count``, a list."""
        post = None if count is None else list
        return self._call((b"SPOP", name) + (() if count is None else (count,)), post)

    def srandmember(self, name: Key, number: int | None = None) -> Any:
        return self._call((b"SRANDMEMBER", name) + (() if number is None else (number,)))

    def sscan(
        self, name: Key, cursor: int = 0, match: Key | None = None, count: int | None = None
    ) -> Any:
        return self._call((b"SSCAN", name, cursor, *s.scan_options(match, count)), s.scan)


# -- what only differs by ``await`` ---------------------------------------------


class SyncIterCommands(Commands):
    """Commands plus the blocking client's generators and scripts."""

    _queues_calls = False

    def scan_iter(
        self, match: Key | None = None, count: int | None = None, _type: str | None = None
    ) -> Iterator[Any]:
        cursor = None
        while cursor != 0:
            cursor, keys = self.scan(cursor or 0, match, count, _type)
            yield from keys

    def hscan_iter(
        self, name: Key, match: Key | None = None, count: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        cursor = None
        while cursor != 0:
            cursor, fields = self.hscan(name, cursor or 0, match, count)
            yield from fields.items()

    def sscan_iter(
        self, name: Key, match: Key | None = None, count: int | None = None
    ) -> Iterator[Any]:
        cursor = None
        while cursor != 0:
            cursor, members = self.sscan(name, cursor or 0, match, count)
            yield from members

    def zscan_iter(
        self,
        name: Key,
        match: Key | None = None,
        count: int | None = None,
        score_cast_func: Cast = float,
    ) -> Iterator[tuple[Any, Any]]:
        cursor = None
        while cursor != 0:
            cursor, pairs = self.zscan(name, cursor or 0, match, count, score_cast_func)
            yield from pairs

    def register_script(self, script: Key) -> Script:
        return Script(self, script)


class AsyncIterCommands(Commands):
    """Commands plus the asyncio client's async generators and scripts."""

    _queues_calls = False

    async def scan_iter(
        self, match: Key | None = None, count: int | None = None, _type: str | None = None
    ) -> AsyncIterator[Any]:
        cursor = None
        while cursor != 0:
            cursor, keys = await self.scan(cursor or 0, match, count, _type)
            for key in keys:
                yield key

    async def hscan_iter(
        self, name: Key, match: Key | None = None, count: int | None = None
    ) -> AsyncIterator[tuple[Any, Any]]:
        cursor = None
        while cursor != 0:
            cursor, fields = await self.hscan(name, cursor or 0, match, count)
            for item in fields.items():
                yield item

    async def sscan_iter(
        self, name: Key, match: Key | None = None, count: int | None = None
    ) -> AsyncIterator[Any]:
        cursor = None
        while cursor != 0:
            cursor, members = await self.sscan(name, cursor or 0, match, count)
            for member in members:
                yield member

    async def zscan_iter(
        self,
        name: Key,
        match: Key | None = None,
        count: int | None = None,
        score_cast_func: Cast = float,
    ) -> AsyncIterator[tuple[Any, Any]]:
        cursor = None
        while cursor != 0:
            cursor, pairs = await self.zscan(name, cursor or 0, match, count, score_cast_func)
            for pair in pairs:
                yield pair

    def register_script(self, script: Key) -> AsyncScript:
        return AsyncScript(self, script)
