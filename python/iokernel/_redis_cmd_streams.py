"""Stream commands (XADD, XREAD, XREADGROUP, consumer groups, XPENDING,
XCLAIM, XAUTOCLAIM, XINFO, ...) with redis-py's names, arguments and reply
shapes, for the clients and pipelines alike (see _redis_commands).

Replies take redis-py's RESP2 ("legacy") shapes whatever the wire said:
entries are ``(id, {field: value})`` tuples, XREAD gives
``[[stream, entries], ...]``, XPENDING and XINFO give dicts.
Bad arguments raise ``DataError`` before anything is sent, as in redis-py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._errors import DataError, ResponseError
from ._redis_commands_support import (
    Caller,
    Key,
    Value,
    shared_connection_refusal,
    text,
    to_dict,
    xread_block_ms,
)

StreamId = int | bytes | str | memoryview


def _entry(e: Any) -> Any:
    if e is None:
        return (None, None)
    return (e[0], to_dict(e[1]) if e[1] is not None else {})


def stream_list(reply: Any) -> Any:
    """XRANGE/XCLAIM entries as ``[(id, {field: value})]``."""
    if reply is None:
        return None
    return [_entry(e) for e in reply]


def xread_reply(reply: Any) -> Any:
    """XREAD/XREADGROUP as ``[[stream, entries], ...]`` (RESP3 sends a map)."""
    if reply is None:
        return []
    items = reply.items() if isinstance(reply, dict) else reply
    return [[name, stream_list(entries)] for name, entries in items]


def _pending(reply: Any) -> dict[str, Any]:
    consumers = reply[3] or []
    return {
        "pending": reply[0],
        "min": reply[1],
        "max": reply[2],
        "consumers": [{"name": n, "pending": int(p)} for n, p in consumers],
    }


def _pending_range(reply: Any) -> list[dict[str, Any]]:
    return [
        {"message_id": r[0], "consumer": r[1], "time_since_delivered": r[2], "times_delivered": r[3]}
        for r in reply
    ]


def _str_keys(reply: Any) -> dict[str, Any]:
    return {text(k): v for k, v in to_dict(reply).items()}


def _info_list(reply: Any) -> list[dict[str, Any]]:
    return [_str_keys(r) for r in reply]


def _xinfo_stream(full: bool) -> Any:
    def post(reply: Any) -> dict[str, Any]:
        data = _str_keys(reply)
        if not full:
            for key in ("first-entry", "last-entry"):
                if data.get(key) is not None:
                    data[key] = _entry(data[key])
            return data
        data["entries"] = dict(_entry(e) for e in data.get("entries") or ())
        groups = []
        for g in data.get("groups") or ():
            group = _str_keys(g)
            group["consumers"] = [_str_keys(c) for c in group.get("consumers") or ()]
            groups.append(group)
        data["groups"] = groups
        return data

    return post


def _xautoclaim(justid: bool) -> Any:
    def post(reply: Any) -> Any:
        if justid:
            return list(reply[1])
        out = list(reply)
        out[1] = stream_list(reply[1])
        return out

    return post


def _xclaim(justid: bool) -> Any:
    return list if justid else stream_list


def _ok(reply: Any) -> bool:
    return reply is True or reply in (b"OK", "OK")


def _positive(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise DataError(f"{name} must be a positive integer")


def _non_negative(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise DataError(f"{name} must be a non-negative integer")


def _trim(maxlen: Any, minid: Any, approximate: bool, limit: Any) -> list[Any]:
    if maxlen is not None and minid is not None:
        raise DataError("Only one of ``maxlen`` or ``minid`` may be specified")
    out: list[Any] = []
    if maxlen is not None:
        _non_negative("maxlen", maxlen)
        out += [b"MAXLEN", *((b"~",) if approximate else ()), maxlen]
    if minid is not None:
        out += [b"MINID", *((b"~",) if approximate else ()), minid]
    if limit is not None:
        out += [b"LIMIT", limit]
    return out


def _streams(streams: Mapping[Key, StreamId], what: str) -> list[Any]:
    if not isinstance(streams, Mapping) or not streams:
        raise DataError(f"{what}: streams must be a non-empty dict")
    return [b"STREAMS", *streams.keys(), *streams.values()]


class StreamCommands(Caller):
    """XADD ... XTRIM; see the module docstring for the reply shapes."""

    def xadd(
        self,
        name: Key,
        fields: Mapping[Key, Value],
        id: StreamId = "*",
        maxlen: int | None = None,
        approximate: bool = True,
        nomkstream: bool = False,
        minid: StreamId | None = None,
        limit: int | None = None,
    ) -> Any:
        """The new entry's id (None with ``nomkstream`` on a missing stream)."""
        if not fields or not (type(fields) is dict or isinstance(fields, Mapping)):
            raise DataError("XADD fields must be a non-empty dict")
        if maxlen is None and minid is None and not nomkstream and limit is None:
            return self._call((b"XADD", name, id, *[x for kv in fields.items() for x in kv]))
        pieces: list[Any] = [b"NOMKSTREAM"] if nomkstream else []
        pieces += _trim(maxlen, minid, approximate, limit)
        pieces.append(id)
        for pair in fields.items():
            pieces.extend(pair)
        return self._call((b"XADD", name, *pieces))

    def xlen(self, name: Key) -> Any:
        return self._call((b"XLEN", name))

    def xdel(self, name: Key, *ids: StreamId) -> Any:
        return self._call((b"XDEL", name, *ids))

    def xtrim(
        self,
        name: Key,
        maxlen: int | None = None,
        approximate: bool = True,
        minid: StreamId | None = None,
        limit: int | None = None,
    ) -> Any:
        """How many entries were removed."""
        if maxlen is None and minid is None:
            raise DataError("One of ``maxlen`` or ``minid`` must be specified")
        return self._call((b"XTRIM", name, *_trim(maxlen, minid, approximate, limit)))

    def xrange(
        self, name: Key, min: StreamId = "-", max: StreamId = "+", count: int | None = None
    ) -> Any:
        pieces: tuple[Any, ...] = () if count is None else (b"COUNT", count)
        if count is not None:
            _positive("XRANGE count", count)
        return self._call((b"XRANGE", name, min, max, *pieces), stream_list)

    def xrevrange(
        self, name: Key, max: StreamId = "+", min: StreamId = "-", count: int | None = None
    ) -> Any:
        pieces: tuple[Any, ...] = () if count is None else (b"COUNT", count)
        if count is not None:
            _positive("XREVRANGE count", count)
        return self._call((b"XREVRANGE", name, max, min, *pieces), stream_list)

    def xread(
        self, streams: Mapping[Key, StreamId], count: int | None = None, block: int | None = None
    ) -> Any:
        """``[[stream, [(id, fields), ...]], ...]``; ``[]`` when nothing came.
        With ``block`` it runs on a connection of its own."""
        pieces: list[Any] = []
        if block is not None:
            _non_negative("XREAD block", block)
            pieces += [b"BLOCK", block]
        if count is not None:
            _positive("XREAD count", count)
            pieces += [b"COUNT", count]
        return self._xread((b"XREAD", *pieces, *_streams(streams, "XREAD")))

    def xreadgroup(
        self,
        groupname: Key,
        consumername: Key,
        streams: Mapping[Key, StreamId],
        count: int | None = None,
        block: int | None = None,
        noack: bool = False,
    ) -> Any:
        """As ``xread``, as a consumer of a group (``">"``: new entries)."""
        pieces: list[Any] = [b"GROUP", groupname, consumername]
        if count is not None:
            _positive("XREADGROUP count", count)
            pieces += [b"COUNT", count]
        if block is not None:
            _non_negative("XREADGROUP block", block)
            pieces += [b"BLOCK", block]
        if noack:
            pieces.append(b"NOACK")
        return self._xread((b"XREADGROUP", *pieces, *_streams(streams, "XREADGROUP")))

    def _xread(self, args: tuple[Any, ...]) -> Any:
        """XREAD/XREADGROUP: with BLOCK they need a connection of their own,
        which the clients' ``_blocking`` provides (pipelines refuse them)."""
        if xread_block_ms(args) is not None:
            blocking = getattr(self, "_blocking", None)
            if blocking is not None:
                return blocking(args, xread_reply)
            client = getattr(self, "_client", None)
            if client is not None and client._conn is None:
                raise ResponseError(shared_connection_refusal(args) or "XREAD BLOCK in a pipeline")
        return self._call(args, xread_reply)

    def xack(self, name: Key, groupname: Key, *ids: StreamId) -> Any:
        return self._call((b"XACK", name, groupname, *ids))

    def xgroup_create(
        self,
        name: Key,
        groupname: Key,
        id: StreamId = "$",
        mkstream: bool = False,
        entries_read: int | None = None,
    ) -> Any:
        pieces: list[Any] = [b"MKSTREAM"] if mkstream else []
        if entries_read is not None:
            pieces += [b"ENTRIESREAD", entries_read]
        return self._call((b"XGROUP", b"CREATE", name, groupname, id, *pieces), _ok)

    def xgroup_destroy(self, name: Key, groupname: Key) -> Any:
        return self._call((b"XGROUP", b"DESTROY", name, groupname), bool)

    def xgroup_createconsumer(self, name: Key, groupname: Key, consumername: Key) -> Any:
        return self._call((b"XGROUP", b"CREATECONSUMER", name, groupname, consumername))

    def xgroup_delconsumer(self, name: Key, groupname: Key, consumername: Key) -> Any:
        return self._call((b"XGROUP", b"DELCONSUMER", name, groupname, consumername))

    def xgroup_setid(
        self, name: Key, groupname: Key, id: StreamId, entries_read: int | None = None
    ) -> Any:
        pieces: tuple[Any, ...] = () if entries_read is None else (b"ENTRIESREAD", entries_read)
        return self._call((b"XGROUP", b"SETID", name, groupname, id, *pieces), _ok)

    def xpending(self, name: Key, groupname: Key) -> Any:
        """``{"pending": n, "min": id, "max": id, "consumers": [{"name", "pending"}]}``."""
        return self._call((b"XPENDING", name, groupname), _pending)

    def xpending_range(
        self,
        name: Key,
        groupname: Key,
        min: StreamId,
        max: StreamId,
        count: int,
        consumername: Key | None = None,
        idle: int | None = None,
    ) -> Any:
        """``[{"message_id", "consumer", "time_since_delivered", "times_delivered"}]``."""
        if min is None or max is None or count is None:
            raise DataError("XPENDING must be provided with min, max and count parameters")
        pieces: list[Any] = []
        if idle is not None:
            if int(idle) < 0:
                raise DataError("XPENDING idle must be a integer >= 0")
            pieces += [b"IDLE", idle]
        if int(count) < 0:
            raise DataError("XPENDING count must be a integer >= 0")
        pieces += [min, max, count]
        if consumername is not None:
            pieces.append(consumername)
        return self._call((b"XPENDING", name, groupname, *pieces), _pending_range)

    def xclaim(
        self,
        name: Key,
        groupname: Key,
        consumername: Key,
        min_idle_time: int,
        message_ids: Sequence[StreamId] | StreamId,
        idle: int | None = None,
        time: int | None = None,
        retrycount: int | None = None,
        force: bool = False,
        justid: bool = False,
    ) -> Any:
        """The claimed entries (their ids only with ``justid``)."""
        _non_negative("XCLAIM min_idle_time", min_idle_time)
        if isinstance(message_ids, (bytes, str, int, memoryview)):
            message_ids = [message_ids]
        if not isinstance(message_ids, (list, tuple)) or not message_ids:
            raise DataError("XCLAIM message_ids must be a non empty list or tuple of message IDs")
        pieces: list[Any] = list(message_ids)
        for word, value in ((b"IDLE", idle), (b"TIME", time), (b"RETRYCOUNT", retrycount)):
            if value is not None:
                if not isinstance(value, int):
                    raise DataError(f"XCLAIM {word.decode().lower()} must be an integer")
                pieces += [word, value]
        if force:
            pieces.append(b"FORCE")
        if justid:
            pieces.append(b"JUSTID")
        args = (b"XCLAIM", name, groupname, consumername, min_idle_time, *pieces)
        return self._call(args, _xclaim(justid))

    def xautoclaim(
        self,
        name: Key,
        groupname: Key,
        consumername: Key,
        min_idle_time: int,
        start_id: StreamId = "0-0",
        count: int | None = None,
        justid: bool = False,
    ) -> Any:
        """``[next_id, entries, deleted_ids]``; the claimed ids only with ``justid``."""
        if int(min_idle_time) < 0:
            raise DataError("XAUTOCLAIM min_idle_time must be a non negative integer")
        pieces: list[Any] = [name, groupname, consumername, min_idle_time, start_id]
        if count is not None:
            if int(count) < 0:
                raise DataError("XAUTOCLAIM count must be an integer >= 0")
            pieces += [b"COUNT", count]
        if justid:
            pieces.append(b"JUSTID")
        return self._call((b"XAUTOCLAIM", *pieces), _xautoclaim(justid))

    def xinfo_stream(self, name: Key, full: bool = False) -> Any:
        args = (b"XINFO", b"STREAM", name, *((b"FULL",) if full else ()))
        return self._call(args, _xinfo_stream(full))

    def xinfo_groups(self, name: Key) -> Any:
        return self._call((b"XINFO", b"GROUPS", name), _info_list)

    def xinfo_consumers(self, name: Key, groupname: Key) -> Any:
        return self._call((b"XINFO", b"CONSUMERS", name, groupname), _info_list)
