"""Geo, SORT, bit operations (BITOP, BITPOS, BITFIELD) and HyperLogLog, with
redis-py's names, arguments and reply shapes, for the clients and pipelines
alike (see _redis_commands).

Bad arguments raise ``DataError`` before anything is sent, as in redis-py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._errors import DataError
from ._redis_commands_support import Caller, Key, Value, ok, text

_UNITS = ("m", "km", "mi", "ft")


def _geopos(reply: Any) -> list[tuple[float, float] | None]:
    return [None if p is None else (float(p[0]), float(p[1])) for p in reply]


def _geo_results(withdist: bool, withhash: bool, withcoord: bool) -> Any:
    """GEORADIUS/GEOSEARCH: members, or ``[member, dist, hash, (lon, lat)]``
    lists holding only what was asked for, in that order."""
    if not (withdist or withhash or withcoord):
        return list
    casts: list[Any] = [lambda m: m]
    if withdist:
        casts.append(float)
    if withhash:
        casts.append(int)
    if withcoord:
        casts.append(lambda ll: (float(ll[0]), float(ll[1])))
    return lambda reply: [[f(v) for f, v in zip(casts, item)] for item in reply]


def _float_or_none(reply: Any) -> float | None:
    return None if reply is None else float(reply)


def _sort_groups(n: int) -> Any:
    return lambda reply: list(zip(*[iter(reply)] * n)) if reply else []


class GeoCommands(Caller):
    """GEOADD ... GEOSEARCHSTORE."""

    def geoadd(
        self,
        name: Key,
        values: Sequence[Any],
        nx: bool = False,
        xx: bool = False,
        ch: bool = False,
    ) -> Any:
        """``values``: longitude, latitude, member, longitude, ... (flat)."""
        if nx and xx:
            raise DataError("GEOADD allows either 'nx' or 'xx', not both")
        if len(values) % 3 != 0:
            raise DataError("GEOADD requires places with lon, lat and name values")
        flags = [w for w, on in ((b"NX", nx), (b"XX", xx), (b"CH", ch)) if on]
        return self._call((b"GEOADD", name, *flags, *values))

    def geodist(self, name: Key, place1: Value, place2: Value, unit: str | None = None) -> Any:
        """The distance as a float, None if a member is missing."""
        if unit is not None and unit.lower() not in _UNITS:
            raise DataError("GEODIST invalid unit")
        unit_arg = () if unit is None else (unit,)
        return self._call((b"GEODIST", name, place1, place2, *unit_arg), _float_or_none)

    def geohash(self, name: Key, *values: Value) -> Any:
        return self._call((b"GEOHASH", name, *values), lambda r: [text(x) for x in r])

    def geopos(self, name: Key, *values: Value) -> Any:
        return self._call((b"GEOPOS", name, *values), _geopos)

    def georadius(
        self,
        name: Key,
        longitude: float,
        latitude: float,
        radius: float,
        unit: str | None = None,
        withdist: bool = False,
        withcoord: bool = False,
        withhash: bool = False,
        count: int | None = None,
        sort: str | None = None,
        store: Key | None = None,
        store_dist: Key | None = None,
        any: bool = False,
    ) -> Any:
        head = (b"GEORADIUS", name, longitude, latitude, radius)
        return self._georadius(head, unit, withdist, withcoord, withhash, count, sort, store, store_dist, any)

    def georadiusbymember(
        self,
        name: Key,
        member: Value,
        radius: float,
        unit: str | None = None,
        withdist: bool = False,
        withcoord: bool = False,
        withhash: bool = False,
        count: int | None = None,
        sort: str | None = None,
        store: Key | None = None,
        store_dist: Key | None = None,
        any: bool = False,
    ) -> Any:
        head = (b"GEORADIUSBYMEMBER", name, member, radius)
        return self._georadius(head, unit, withdist, withcoord, withhash, count, sort, store, store_dist, any)

    def _georadius(
        self, head: tuple[Any, ...], unit: str | None, withdist: bool, withcoord: bool,
        withhash: bool, count: int | None, sort: str | None, store: Any, store_dist: Any,
        any_: bool,
    ) -> Any:
        if unit and unit not in _UNITS:
            raise DataError("GEORADIUS invalid unit")
        pieces: list[Any] = [unit or "m"]
        if any_ and count is None:
            raise DataError("``any`` can't be provided without ``count``")
        pieces += [w for w, on in ((b"WITHDIST", withdist), (b"WITHCOORD", withcoord),
                                   (b"WITHHASH", withhash)) if on]
        if count is not None:
            pieces += [b"COUNT", count, *((b"ANY",) if any_ else ())]
        if sort:
            if sort not in ("ASC", "DESC"):
                raise DataError("GEORADIUS invalid sort")
            pieces.append(sort)
        if store and store_dist:
            raise DataError("GEORADIUS store and store_dist can't be set together")
        if store:
            pieces += [b"STORE", store]
        if store_dist:
            pieces += [b"STOREDIST", store_dist]
        post = None if (store or store_dist) else _geo_results(withdist, withhash, withcoord)
        return self._call((*head, *pieces), post)

    def geosearch(
        self,
        name: Key,
        member: Value | None = None,
        longitude: float | None = None,
        latitude: float | None = None,
        unit: str = "m",
        radius: float | None = None,
        width: float | None = None,
        height: float | None = None,
        sort: str | None = None,
        count: int | None = None,
        any: bool = False,
        withcoord: bool = False,
        withdist: bool = False,
        withhash: bool = False,
    ) -> Any:
        pieces = _geosearch_args(member, longitude, latitude, unit, radius, width, height, sort, count, any)
        pieces += [w for w, on in ((b"WITHDIST", withdist), (b"WITHCOORD", withcoord),
                                   (b"WITHHASH", withhash)) if on]
        return self._call((b"GEOSEARCH", name, *pieces), _geo_results(withdist, withhash, withcoord))

    def geosearchstore(
        self,
        dest: Key,
        name: Key,
        member: Value | None = None,
        longitude: float | None = None,
        latitude: float | None = None,
        unit: str = "m",
        radius: float | None = None,
        width: float | None = None,
        height: float | None = None,
        sort: str | None = None,
        count: int | None = None,
        any: bool = False,
        storedist: bool = False,
    ) -> Any:
        pieces = _geosearch_args(member, longitude, latitude, unit, radius, width, height, sort, count, any)
        if storedist:
            pieces.append(b"STOREDIST")
        return self._call((b"GEOSEARCHSTORE", dest, name, *pieces))


def _geosearch_args(
    member: Any, longitude: Any, latitude: Any, unit: Any, radius: Any, width: Any,
    height: Any, sort: Any, count: Any, any_: bool,
) -> list[Any]:
    pieces: list[Any] = []
    if member is None and (longitude is None or latitude is None):
        raise DataError("GEOSEARCH must have member or longitude and latitude")
    if member is not None:
        if longitude is not None or latitude is not None:
            raise DataError("GEOSEARCH member and longitude or latitude can't be set together")
        pieces += [b"FROMMEMBER", member]
    else:
        pieces += [b"FROMLONLAT", longitude, latitude]
    if radius is None and (width is None or height is None):
        raise DataError("GEOSEARCH must have radius or width and height")
    if unit is None:
        raise DataError("GEOSEARCH must have unit")
    if unit.lower() not in _UNITS:
        raise DataError("GEOSEARCH invalid unit")
    if radius is not None:
        if width is not None or height is not None:
            raise DataError("GEOSEARCH radius and width or height can't be set together")
        pieces += [b"BYRADIUS", radius, unit]
    else:
        pieces += [b"BYBOX", width, height, unit]
    if sort:
        if sort.upper() not in ("ASC", "DESC"):
            raise DataError("GEOSEARCH invalid sort")
        pieces.append(sort.upper().encode())
    if count:
        pieces += [b"COUNT", count, *((b"ANY",) if any_ else ())]
    elif any_:
        raise DataError("GEOSEARCH ``any`` can't be provided without count")
    return pieces


class BitFieldOperation:
    """BITFIELD sub-operations queued by ``get``/``set``/``incrby``/``overflow``
    and sent by ``execute()`` (redis-py's ``BitFieldOperation``)."""

    def __init__(self, client: Any, key: Key, default_overflow: str | None = None) -> None:
        self.client = client
        self.key = key
        self._default_overflow = default_overflow
        self.reset()

    def reset(self) -> None:
        self.operations: list[tuple[Any, ...]] = []
        self._last_overflow = "WRAP"
        self.overflow(self._default_overflow or self._last_overflow)

    def overflow(self, overflow: str) -> BitFieldOperation:
        """WRAP, SAT or FAIL for the following ``set``/``incrby``."""
        overflow = overflow.upper()
        if overflow != self._last_overflow:
            self._last_overflow = overflow
            self.operations.append((b"OVERFLOW", overflow))
        return self

    def incrby(self, fmt: str, offset: int | str, increment: int, overflow: str | None = None) -> BitFieldOperation:
        if overflow is not None:
            self.overflow(overflow)
        self.operations.append((b"INCRBY", fmt, offset, increment))
        return self

    def get(self, fmt: str, offset: int | str) -> BitFieldOperation:
        self.operations.append((b"GET", fmt, offset))
        return self

    def set(self, fmt: str, offset: int | str, value: int) -> BitFieldOperation:
        self.operations.append((b"SET", fmt, offset, value))
        return self

    @property
    def command(self) -> tuple[Any, ...]:
        return (b"BITFIELD", self.key, *(x for op in self.operations for x in op))

    def execute(self) -> Any:
        """Send the queued operations; a list of their results (awaitable
        with the asyncio client). The queue is emptied."""
        command = self.command
        self.reset()
        return self.client._call(command)


class BitAndCountCommands(Caller):
    """BITOP, BITPOS, BITFIELD, SORT and HyperLogLog."""

    def bitop(self, operation: str, dest: Key, *keys: Key) -> Any:
        return self._call((b"BITOP", operation, dest, *keys))

    def bitpos(
        self, key: Key, bit: int, start: int | None = None, end: int | None = None,
        mode: str | None = None,
    ) -> Any:
        if bit not in (0, 1):
            raise DataError("bit must be 0 or 1")
        pieces: list[Any] = [key, bit]
        if start is not None:
            pieces.append(start)
        if start is not None and end is not None:
            pieces.append(end)
        elif start is None and end is not None:
            raise DataError("start argument is not set, when end is specified")
        if mode is not None:
            pieces.append(mode)
        return self._call((b"BITPOS", *pieces))

    def bitfield(self, key: Key, default_overflow: str | None = None) -> BitFieldOperation:
        """A ``BitFieldOperation`` on ``key``: chain ``get``/``set``/``incrby``,
        then ``execute()``."""
        return BitFieldOperation(self, key, default_overflow)

    def bitfield_ro(
        self, key: Key, encoding: str, offset: int | str, items: Sequence[tuple[str, int | str]] | None = None
    ) -> Any:
        pieces: list[Any] = [b"GET", encoding, offset]
        for enc, off in items or ():
            pieces += [b"GET", enc, off]
        return self._call((b"BITFIELD_RO", key, *pieces))

    def pfadd(self, name: Key, *values: Value) -> Any:
        return self._call((b"PFADD", name, *values))

    def pfcount(self, *sources: Key) -> Any:
        return self._call((b"PFCOUNT", *sources))

    def pfmerge(self, dest: Key, *sources: Key) -> Any:
        return self._call((b"PFMERGE", dest, *sources), ok)

    def sort(
        self,
        name: Key,
        start: int | None = None,
        num: int | None = None,
        by: Key | None = None,
        get: Key | Sequence[Key] | None = None,
        desc: bool = False,
        alpha: bool = False,
        store: Key | None = None,
        groups: bool = False,
    ) -> Any:
        """The sorted elements; grouped in tuples of ``len(get)`` with
        ``groups=True``; the stored length with ``store``."""
        return self._sort(b"SORT", name, start, num, by, get, desc, alpha, store, groups)

    def sort_ro(
        self,
        key: Key,
        start: int | None = None,
        num: int | None = None,
        by: Key | None = None,
        get: Key | Sequence[Key] | None = None,
        desc: bool = False,
        alpha: bool = False,
    ) -> Any:
        return self._sort(b"SORT_RO", key, start, num, by, get, desc, alpha, None, False)

    def _sort(
        self, cmd: bytes, name: Key, start: Any, num: Any, by: Any, get: Any, desc: bool,
        alpha: bool, store: Any, groups: bool,
    ) -> Any:
        if (start is not None and num is None) or (num is not None and start is None):
            raise DataError("``start`` and ``num`` must both be specified")
        pieces: list[Any] = [name]
        if by is not None:
            pieces += [b"BY", by]
        if start is not None:
            pieces += [b"LIMIT", start, num]
        gets: list[Any] = []
        if get is not None:
            gets = [get] if isinstance(get, (bytes, str, memoryview)) else list(get)
            for g in gets:
                pieces += [b"GET", g]
        if desc:
            pieces.append(b"DESC")
        if alpha:
            pieces.append(b"ALPHA")
        if store is not None:
            pieces += [b"STORE", store]
        post = None
        if groups:
            if len(gets) < 2:
                raise DataError(
                    'when using "groups" the "get" argument must be specified and contain at least two keys'
                )
            post = _sort_groups(len(gets))
        return self._call((cmd, *pieces), post)
