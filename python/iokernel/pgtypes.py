"""Python types for PostgreSQL values that have no standard-library type,
shaped like asyncpg's (``asyncpg.types``) so that code moving from asyncpg
keeps working: geometric types (``Point``, ``Box``, ``Line``,
``LineSegment``, ``Path``, ``Polygon``, ``Circle``), ``BitString`` (bit,
varbit) and ``Range`` (ranges; a multirange is a list of them).

Results of these types come back as these classes; as parameters they are
accepted, and so are plain tuples (``(1, 2)`` for a point, ``(1, 5)`` for a
range) as asyncpg accepts them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = [
    "BitString", "Box", "Circle", "Line", "LineSegment", "Path", "Point", "Polygon", "Range",
]


class Point(tuple[float, float]):
    """A point: ``(x, y)``."""

    __slots__ = ()

    def __new__(cls, x: Any, y: Any) -> Point:
        return super().__new__(cls, (float(x), float(y)))

    @property
    def x(self) -> float:
        return self[0]

    @property
    def y(self) -> float:
        return self[1]

    def __repr__(self) -> str:
        return f"Point({self[0]!r}, {self[1]!r})"


def _point(p: Any) -> Point:
    return p if isinstance(p, Point) else Point(*p)


class Box(tuple[Point, Point]):
    """A box: ``(high, low)`` corners (PostgreSQL keeps the upper right first)."""

    __slots__ = ()

    def __new__(cls, high: Any, low: Any) -> Box:
        return super().__new__(cls, (_point(high), _point(low)))

    @property
    def high(self) -> Point:
        return self[0]

    @property
    def low(self) -> Point:
        return self[1]


class Line(tuple[float, float, float]):
    """An infinite line ``A x + B y + C = 0``: ``(A, B, C)``."""

    __slots__ = ()

    def __new__(cls, A: Any, B: Any, C: Any) -> Line:
        return super().__new__(cls, (float(A), float(B), float(C)))

    @property
    def A(self) -> float:
        return self[0]

    @property
    def B(self) -> float:
        return self[1]

    @property
    def C(self) -> float:
        return self[2]


class LineSegment(tuple[Point, Point]):
    """A line segment: ``(p1, p2)``."""

    __slots__ = ()

    def __new__(cls, p1: Any, p2: Any) -> LineSegment:
        return super().__new__(cls, (_point(p1), _point(p2)))

    @property
    def p1(self) -> Point:
        return self[0]

    @property
    def p2(self) -> Point:
        return self[1]


class Path:
    """A path: points, open or closed."""

    __slots__ = ("is_closed", "points")

    def __init__(self, *points: Any, is_closed: bool = False) -> None:
        self.points = tuple(_point(p) for p in points)
        self.is_closed = bool(is_closed)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Path):
            return NotImplemented
        return (self.points, self.is_closed) == (other.points, other.is_closed)

    def __hash__(self) -> int:
        return hash((self.points, self.is_closed))

    def __len__(self) -> int:
        return len(self.points)

    def __iter__(self) -> Iterator[Point]:
        return iter(self.points)

    def __getitem__(self, i: int) -> Point:
        return self.points[i]

    def __repr__(self) -> str:
        pts = ", ".join(repr(p) for p in self.points)
        return f"{type(self).__name__}({pts}, is_closed={self.is_closed})"


class Polygon(Path):
    """A polygon: a closed path."""

    __slots__ = ()

    def __init__(self, *points: Any) -> None:
        super().__init__(*points, is_closed=True)

    def __repr__(self) -> str:
        return f"Polygon({', '.join(repr(p) for p in self.points)})"


class Circle(tuple[Point, float]):
    """A circle: ``(center, radius)``."""

    __slots__ = ()

    def __new__(cls, center: Any, radius: Any) -> Circle:
        return super().__new__(cls, (_point(center), float(radius)))

    @property
    def center(self) -> Point:
        return self[0]

    @property
    def radius(self) -> float:
        return self[1]


class BitString:
    """A string of bits (bit, varbit): ``BitString("1011")``."""

    __slots__ = ("_bits", "_bytes")

    def __init__(self, bits: str = "") -> None:
        if any(c not in "01" for c in bits.replace(" ", "")):
            raise ValueError(f"a BitString is made of 0s and 1s, not {bits!r}")
        bits = bits.replace(" ", "")
        self._bits = len(bits)
        n = int(bits, 2) << (-len(bits) % 8) if bits else 0
        self._bytes = n.to_bytes((len(bits) + 7) // 8, "big")

    @classmethod
    def from_bytes(cls, data: bytes, bitlength: int | None = None) -> BitString:
        """The first ``bitlength`` bits of ``data`` (all of them by default)."""
        n = len(data) * 8 if bitlength is None else bitlength
        if not 0 <= n <= len(data) * 8:
            raise ValueError(f"bitlength {n} does not fit in {len(data)} bytes")
        out = cls()
        out._bits = n
        keep = bytearray(data[: (n + 7) // 8])
        if n % 8:
            keep[-1] &= (0xFF << (8 - n % 8)) & 0xFF
        out._bytes = bytes(keep)
        return out

    def bytes(self) -> bytes:
        """The bits, packed from the most significant bit, zero-padded."""
        return self._bytes

    def as_string(self) -> str:
        n = int.from_bytes(self._bytes, "big") if self._bytes else 0
        s = format(n, f"0{len(self._bytes) * 8}b") if self._bytes else ""
        return s[: self._bits]

    def __len__(self) -> int:
        return self._bits

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BitString):
            return NotImplemented
        return (self._bits, self._bytes) == (other._bits, other._bytes)

    def __hash__(self) -> int:
        return hash((self._bits, self._bytes))

    def __iter__(self) -> Iterator[int]:
        return (int(c) for c in self.as_string())

    def __repr__(self) -> str:
        return f"<BitString {self.as_string()}>"


class Range:
    """A range: bounds (None: unbounded), which bounds are included, or
    empty. ``Range(1, 5)`` is ``[1,5)``."""

    __slots__ = ("_empty", "_lower", "_lower_inc", "_upper", "_upper_inc")

    def __init__(self, lower: Any = None, upper: Any = None, *, lower_inc: bool = True,
                 upper_inc: bool = False, empty: bool = False) -> None:
        self._empty = empty
        self._lower = None if empty else lower
        self._upper = None if empty else upper
        self._lower_inc = bool(lower_inc) and lower is not None and not empty
        self._upper_inc = bool(upper_inc) and upper is not None and not empty

    lower = property(lambda self: self._lower)
    upper = property(lambda self: self._upper)
    lower_inc = property(lambda self: self._lower_inc)
    upper_inc = property(lambda self: self._upper_inc)
    isempty = property(lambda self: self._empty)

    @property
    def lower_inf(self) -> bool:
        return self._lower is None and not self._empty

    @property
    def upper_inf(self) -> bool:
        return self._upper is None and not self._empty

    def _key(self) -> tuple[Any, ...]:
        return (self._lower, self._upper, self._lower_inc, self._upper_inc, self._empty)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Range):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __bool__(self) -> bool:
        return not self._empty

    def __repr__(self) -> str:
        if self._empty:
            return "<Range empty>"
        lo = "[" if self._lower_inc else "("
        hi = "]" if self._upper_inc else ")"
        lower = "" if self._lower is None else repr(self._lower)
        upper = "" if self._upper is None else repr(self._upper)
        return f"<Range {lo}{lower}, {upper}{hi}>"

