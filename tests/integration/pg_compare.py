"""Comparing iokernel's PostgreSQL values with asyncpg's: same Python type
and value, where asyncpg's own classes (``asyncpg.types.Point``, ``Range``,
``BitString``, ``Record`` ...) count as the same as iokernel's
(``iokernel.pgtypes``, ``pg.Record``) when their fields are the same.

Floats compare NaN-aware and signed-zero-aware; ``Decimal`` by value and
scale (``1.500`` is not ``1.5``); aware datetimes and times by value and UTC
offset; asyncpg's UUID subclass as ``uuid.UUID`` (iokernel's must be
``uuid.UUID`` or its own subclass, ``iokernel.pg.UUID``).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal
from typing import Any

from iokernel import pg

_GEOMETRY = {"Point", "Box", "Line", "LineSegment", "Circle"}


def _floats(v: Any) -> tuple[float, ...]:
    """A shape's numbers, flat (asyncpg's Circle holds a plain tuple as its
    center, iokernel's a Point)."""
    if isinstance(v, (int, float)):
        return (float(v),)
    return tuple(f for x in v for f in _floats(x))


def norm(v: Any) -> Any:
    """A comparable form of asyncpg's and iokernel's own classes."""
    name = type(v).__name__
    mod = type(v).__module__
    if not (mod.startswith("asyncpg") or mod.startswith("iokernel")):
        return v
    if name in _GEOMETRY:
        return (name, _floats(v))
    if name in ("Path", "Polygon"):
        return (name, _floats(v.points), name == "Polygon" or v.is_closed)
    if name == "BitString":
        return ("BitString", v.as_string().replace(" ", ""))
    if name == "Range":
        return ("Range", norm(v.lower), norm(v.upper), v.lower_inc, v.upper_inc, v.isempty)
    if name == "Record":
        return ("Record", tuple(norm(x) for x in v.values()), tuple(v.keys()))
    return v


def same(a: Any, b: Any) -> bool:
    """``a`` (iokernel's) is the same as ``b`` (the reference)."""
    if isinstance(b, uuid.UUID):
        return type(a) in (uuid.UUID, pg.UUID) and a == b and str(a) == str(b)
    na, nb = norm(a), norm(b)
    if na is not a or nb is not b:
        return same(na, nb)
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, Decimal):
        if not a.is_finite() or not b.is_finite():
            return str(a) == str(b)
        scale_a = -min(int(a.as_tuple().exponent), 0)
        scale_b = -min(int(b.as_tuple().exponent), 0)
        return a == b and scale_a == scale_b
    if isinstance(a, (dt.datetime, dt.time)):
        return a == b and a.utcoffset() == b.utcoffset()
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return bool(a == b)
