"""Sorted sets, scripting and server commands, and Lua script objects.

Second half of the command layer; :mod:`iokernel._redis_commands` explains the
design and assembles the public :class:`~iokernel._redis_commands.Commands`.
Same rule here: one method per command, building ``args`` and naming a reply
parser, then ``self._call(args, post)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import _redis_commands_support as s
from ._errors import DataError
from ._redis_commands_support import Caller, Key, Keys, Timeout, Value

Cast = Callable[[Any], Any]


class SortedSetCommands(Caller):
    """ZADD and friends, including the blocking BZPOPMIN/BZPOPMAX."""

    def zadd(
        self,
        name: Key,
        mapping: Mapping[Key, float],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
        incr: bool = False,
        gt: bool = False,
        lt: bool = False,
    ) -> Any:
        """Members added (changed, with ``ch``); with ``incr`` the new score or None."""
        if not mapping:
            raise DataError("zadd needs at least one member: score pair")
        if (nx and xx) or (gt and lt) or (nx and (gt or lt)):
            raise DataError("zadd: nx, xx, gt and lt exclude each other (xx may go with gt/lt)")
        if incr and len(mapping) != 1:
            raise DataError("zadd: incr takes exactly one member: score pair")
        pairs = tuple(x for member, score in mapping.items() for x in (score, member))
        opts = s.flags(nx=nx, xx=xx, gt=gt, lt=lt, ch=ch, incr=incr)
        return self._call((b"ZADD", name, *opts, *pairs), s.float_or_none if incr else None)

    def zrem(self, name: Key, *values: Value) -> Any:
        return self._call((b"ZREM", name, *values))

    def zscore(self, name: Key, value: Value) -> Any:
        return self._call((b"ZSCORE", name, value), s.float_or_none)

    def zmscore(self, key: Key, members: Iterable[Value]) -> Any:
        members = list(members)
        if not members:
            raise DataError("ZMSCORE members must be a non-empty list")
        return self._call((b"ZMSCORE", key, *members), s.float_list)

    def zincrby(self, name: Key, amount: float, value: Value) -> Any:
        return self._call((b"ZINCRBY", name, amount, value), s.to_float)

    def zcard(self, name: Key) -> Any:
        return self._call((b"ZCARD", name))

    def zcount(self, name: Key, min: float | str, max: float | str) -> Any:
        return self._call((b"ZCOUNT", name, min, max))

    def zrange(
        self,
        name: Key,
        start: Any,
        end: Any,
        desc: bool = False,
        withscores: bool = False,
        score_cast_func: Cast = float,
        byscore: bool = False,
        bylex: bool = False,
        offset: int | None = None,
        num: int | None = None,
    ) -> Any:
        """Members, or ``[(member, score)]`` with ``withscores``.

        ``start``/``end`` are ranks, or scores with ``byscore``, or ``[a``/``(a``
        bounds with ``bylex``. With ``desc`` and ``byscore``/``bylex`` the
        server wants the high bound first, as in redis-py.
        """
        if byscore and bylex:
            raise DataError("zrange: byscore and bylex exclude each other")
        if bylex and withscores:
            raise DataError("zrange: withscores does not go with bylex")
        opts = s.flags(byscore=byscore, bylex=bylex, rev=desc) + s.limit(offset, num)
        args = (b"ZRANGE", name, start, end, *opts, *s.flags(withscores=withscores))
        return self._call(args, s.score_pairs(score_cast_func) if withscores else None)

    def zrevrange(
        self,
        name: Key,
        start: int,
        end: int,
        withscores: bool = False,
        score_cast_func: Cast = float,
    ) -> Any:
        args = (b"ZREVRANGE", name, start, end, *s.flags(withscores=withscores))
        return self._call(args, s.score_pairs(score_cast_func) if withscores else None)

    def zrangebyscore(
        self,
        name: Key,
        min: float | str,
        max: float | str,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Cast = float,
    ) -> Any:
        opts = s.limit(start, num) + s.flags(withscores=withscores)
        post = s.score_pairs(score_cast_func) if withscores else None
        return self._call((b"ZRANGEBYSCORE", name, min, max, *opts), post)

    def zrevrangebyscore(
        self,
        name: Key,
        max: float | str,
        min: float | str,
        start: int | None = None,
        num: int | None = None,
        withscores: bool = False,
        score_cast_func: Cast = float,
    ) -> Any:
        opts = s.limit(start, num) + s.flags(withscores=withscores)
        post = s.score_pairs(score_cast_func) if withscores else None
        return self._call((b"ZREVRANGEBYSCORE", name, max, min, *opts), post)

    def zrank(
        self, name: Key, value: Value, withscore: bool = False, score_cast_func: Cast = float
    ) -> Any:
        """The rank or None; ``[rank, score]`` with ``withscore`` (Redis >= 7.2)."""
        post = s.rank_with_score(score_cast_func) if withscore else None
        return self._call((b"ZRANK", name, value, *s.flags(withscore=withscore)), post)

    def zrevrank(
        self, name: Key, value: Value, withscore: bool = False, score_cast_func: Cast = float
    ) -> Any:
        post = s.rank_with_score(score_cast_func) if withscore else None
        return self._call((b"ZREVRANK", name, value, *s.flags(withscore=withscore)), post)

    def zremrangebyrank(self, name: Key, min: int, max: int) -> Any:
        return self._call((b"ZREMRANGEBYRANK", name, min, max))

    def zremrangebyscore(self, name: Key, min: float | str, max: float | str) -> Any:
        return self._call((b"ZREMRANGEBYSCORE", name, min, max))

    def zpopmin(self, name: Key, count: int | None = None) -> Any:
        """``[(member, score)]`` (one pair without ``count``; empty when none)."""
        args = (b"ZPOPMIN", name) + (() if count is None else (count,))
        return self._call(args, s.score_pairs())

    def zpopmax(self, name: Key, count: int | None = None) -> Any:
        args = (b"ZPOPMAX", name) + (() if count is None else (count,))
        return self._call(args, s.score_pairs())

    def zscan(
        self,
        name: Key,
        cursor: int = 0,
        match: Key | None = None,
        count: int | None = None,
        score_cast_func: Cast = float,
    ) -> Any:
        """``(next_cursor, [(member, score)])``."""
        args = (b"ZSCAN", name, cursor, *s.scan_options(match, count))
        return self._call(args, s.zscan(score_cast_func))

    # Blocking pops: the client routes these to a dedicated connection.

    def bzpopmin(self, keys: Keys, timeout: Timeout = 0) -> Any:
        """``(key, member, score)``, or None on timeout."""
        args = (b"BZPOPMIN", *s.keys_and_args(keys, ()), s.timeout_seconds(timeout))
        return self._call(args, s.bzpop)

    def bzpopmax(self, keys: Keys, timeout: Timeout = 0) -> Any:
        args = (b"BZPOPMAX", *s.keys_and_args(keys, ()), s.timeout_seconds(timeout))
        return self._call(args, s.bzpop)


class ServerCommands(Caller):
    """Scripting, server and connection commands."""

    def eval(self, script: Key, numkeys: int, *keys_and_args: Value) -> Any:
        return self._call((b"EVAL", script, numkeys, *keys_and_args))

    def evalsha(self, sha: Key, numkeys: int, *keys_and_args: Value) -> Any:
        return self._call((b"EVALSHA", sha, numkeys, *keys_and_args))

    def script_load(self, script: Key) -> Any:
        """The SHA1 of ``script`` as a str."""
        return self._call((b"SCRIPT", b"LOAD", script), s.text)

    def script_exists(self, *args: Key) -> Any:
        return self._call((b"SCRIPT", b"EXISTS", *args), s.bool_list)

    def script_flush(self, sync_type: str | None = None) -> Any:
        """``sync_type`` is "SYNC", "ASYNC" or None (the server's default)."""
        args = (b"SCRIPT", b"FLUSH") + (() if sync_type is None else (sync_type,))
        return self._call(args, s.ok)

    # -- server and connection -------------------------------------------------

    def ping(self) -> Any:
        return self._call((b"PING",), s.pong)

    def echo(self, value: Value) -> Any:
        return self._call((b"ECHO", value))

    def info(self, section: str | None = None, *args: str) -> Any:
        """INFO parsed into a dict, the way redis-py does it."""
        sections = () if section is None else (section, *args)
        return self._call((b"INFO", *sections), s.info)

    def time(self) -> Any:
        """``(seconds, microseconds)`` of the server clock."""
        return self._call((b"TIME",), s.time_pair)

    def config_get(self, pattern: Key = "*", *args: Key) -> Any:
        """``{name: value}``, both str."""
        return self._call((b"CONFIG", b"GET", pattern, *args), s.str_dict)

    def config_set(self, name: Key, value: Value, *args: Value) -> Any:
        """One parameter, or several: ``config_set(n1, v1, n2, v2, ...)``."""
        if len(args) % 2:
            raise DataError("config_set needs name, value pairs")
        return self._call((b"CONFIG", b"SET", name, value, *args), s.ok)

    def client_setname(self, name: Key) -> Any:
        return self._call((b"CLIENT", b"SETNAME", name), s.ok)

    def client_getname(self) -> Any:
        """The connection name as a str, or None."""
        return self._call((b"CLIENT", b"GETNAME"), s.text)

    def client_id(self) -> Any:
        return self._call((b"CLIENT", b"ID"))


class _ScriptBase:
    """A Lua script called by SHA1, sent in full only when the server lacks it."""

    def __init__(self, client: Any, script: Key) -> None:
        self.registered_client = client
        self.script = script
        source = script.encode() if isinstance(script, str) else bytes(script)
        self.sha = hashlib.sha1(source).hexdigest()

    def _target(self, client: Any) -> Any:
        return self.registered_client if client is None else client

    def _args(self, keys: Sequence[Key], args: Sequence[Value], by_sha: bool) -> tuple[Any, ...]:
        head = (b"EVALSHA", self.sha) if by_sha else (b"EVAL", self.script)
        return (*head, len(keys), *keys, *args)


def _is_noscript(exc: BaseException) -> bool:
    return "NOSCRIPT" in str(exc)


class Script(_ScriptBase):
    """``script(keys, args)``: EVALSHA, then EVAL when the server answers NOSCRIPT.

    A pipeline (``_queues_calls`` true, see ``Commands``) gets EVAL straight
    away, since its errors only surface at ``execute()``; the server caches
    the script then. ``client=`` runs the script on another client or pipeline.
    """

    def __call__(
        self, keys: Sequence[Key] = (), args: Sequence[Value] = (), client: Any = None
    ) -> Any:
        target = self._target(client)
        if getattr(target, "_queues_calls", False):
            return target._call(self._args(keys, args, by_sha=False))
        try:
            return target._call(self._args(keys, args, by_sha=True))
        except Exception as exc:
            if not _is_noscript(exc):
                raise
            return target._call(self._args(keys, args, by_sha=False))


class AsyncScript(_ScriptBase):
    """:class:`Script` for the asyncio client: ``await script(keys, args)``."""

    async def __call__(
        self, keys: Sequence[Key] = (), args: Sequence[Value] = (), client: Any = None
    ) -> Any:
        target = self._target(client)
        if getattr(target, "_queues_calls", False):
            return target._call(self._args(keys, args, by_sha=False))
        try:
            return await target._call(self._args(keys, args, by_sha=True))
        except Exception as exc:
            if not _is_noscript(exc):
                raise
            return await target._call(self._args(keys, args, by_sha=False))
