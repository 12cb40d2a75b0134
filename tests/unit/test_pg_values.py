"""PostgreSQL TEXT-format values to Python and back (src/python/pg/values.rs).

Through two test hooks of the native module: ``_pg_decode_cell(oid, text)``
decodes one result cell as the client does, ``_pg_encode_param(obj)`` returns
the text a Bind parameter carries (None for NULL). No server is needed: the
inputs are what PostgreSQL 15 prints with the session settings the client sets
(DateStyle=ISO, TimeZone=UTC, IntervalStyle=iso_8601, extra_float_digits=3),
and the expected Python values are what asyncpg returns for the same cells,
except where noted ("char" as str); json/jsonb are their text, as in asyncpg.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import math
import uuid
from typing import Any

import pytest

from iokernel import _native, pg

UTC = dt.timezone.utc
D = decimal.Decimal


def dec(oid: int, text: str | bytes | None) -> Any:
    if isinstance(text, str):
        text = text.encode()
    return _native._pg_decode_cell(oid, text)


def enc(obj: object) -> bytes | None:
    return _native._pg_encode_param(obj)


def tz(**kw: float) -> dt.timezone:
    return dt.timezone(dt.timedelta(**kw))


def same(a: Any, b: Any) -> bool:
    """Equal, of the same type all the way down (NaN equals NaN, tz compared;
    a uuid.UUID comes back as iokernel's subclass)."""
    if type(b) is uuid.UUID:
        return type(a) is pg.UUID and a == b and str(a) == str(b)
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1, a) == math.copysign(1, b)
        )
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, D):
        return str(a) == str(b)
    if isinstance(a, (dt.datetime, dt.time)):
        return a == b and a.tzinfo == b.tzinfo
    return bool(a == b)


# --- results -------------------------------------------------------------

DECODE_CASES: list[tuple[int, str, Any]] = [
    (16, "t", True),
    (16, "f", False),
    (17, "\\x", b""),
    (17, "\\x0a1bff", b"\x0a\x1b\xff"),
    (18, "a", "a"),
    (19, "pg_catalog", "pg_catalog"),
    (20, "9223372036854775807", 2**63 - 1),
    (20, "-9223372036854775808", -(2**63)),
    (21, "-32768", -32768),
    (23, "42", 42),
    (25, 'héllo\n"wörld"', 'héllo\n"wörld"'),
    (25, "", ""),
    (26, "4294967295", 4294967295),
    (142, "<a/>", "<a/>"),
    (700, "1.5", 1.5),
    (701, "0.1", 0.1),
    (701, "1e+300", 1e300),
    (701, "-0", -0.0),
    (701, "Infinity", math.inf),
    (700, "-Infinity", -math.inf),
    (701, "NaN", math.nan),
    (1042, "ab  ", "ab  "),
    (1043, "x", "x"),
    (1700, "123.4500", D("123.4500")),
    (1700, "NaN", D("NaN")),
    (1700, "Infinity", D("Infinity")),
    (1700, "-Infinity", D("-Infinity")),
    (1700, "0.0000000000000000000000000000001", D("1E-31")),
    (1082, "2024-02-29", dt.date(2024, 2, 29)),
    (1082, "0001-01-01", dt.date(1, 1, 1)),
    (1083, "13:04:05", dt.time(13, 4, 5)),
    (1083, "13:04:05.123456", dt.time(13, 4, 5, 123456)),
    (1083, "00:00:00.5", dt.time(0, 0, 0, 500000)),
    (1114, "2024-01-02 03:04:05.5", dt.datetime(2024, 1, 2, 3, 4, 5, 500000)),
    (1114, "9999-12-31 23:59:59.999999", dt.datetime(9999, 12, 31, 23, 59, 59, 999999)),
    (1184, "2024-01-02 03:04:05.5+00", dt.datetime(2024, 1, 2, 3, 4, 5, 500000, tzinfo=UTC)),
    (1184, "2024-01-02 03:04:05+05:30", dt.datetime(2024, 1, 1, 21, 34, 5, tzinfo=UTC)),
    (1184, "2024-01-01 20:00:00-08", dt.datetime(2024, 1, 2, 4, 0, tzinfo=UTC)),
    (1184, "1900-01-01 00:19:32+00:19:32", dt.datetime(1900, 1, 1, tzinfo=UTC)),
    (1186, "PT0S", dt.timedelta(0)),
    (1186, "P3DT4H5M6.5S", dt.timedelta(days=3, hours=4, minutes=5, seconds=6.5)),
    (1186, "PT-0.000001S", dt.timedelta(microseconds=-1)),
    (1186, "P-1DT23H59M59.5S", dt.timedelta(days=-1, hours=23, minutes=59, seconds=59.5)),
    (1186, "P-999999999D", dt.timedelta(days=-999999999)),
    (1186, "PT-2562047788H-54.775808S", dt.timedelta(microseconds=-(2**63))),
    (
        2950,
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ),
    (114, '{"a": [1, 2.5, null, "ü"]}', '{"a": [1, 2.5, null, "ü"]}'),
    (114, ' [1,  2] ', ' [1,  2] '),
    (3802, "null", "null"),
    (3802, '"s"', '"s"'),
    # unknown types: str (point, timetz, int2vector)
    (600, "(1,2)", "(1,2)"),
    (1266, "12:00:00+05:30", "12:00:00+05:30"),
    (22, "1 2", "1 2"),
]


@pytest.mark.parametrize(("oid", "text", "want"), DECODE_CASES)
def test_decode(oid: int, text: str, want: Any) -> None:
    got = dec(oid, text)
    assert same(got, want), (got, want)


def test_decode_types() -> None:
    assert type(dec(16, "t")) is bool
    assert type(dec(20, "1")) is int
    assert type(dec(1700, "1")) is D
    got = dec(2950, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    assert type(got) is pg.UUID and isinstance(got, uuid.UUID)
    assert type(dec(1082, "2024-01-01")) is dt.date
    assert type(dec(1114, "2024-01-01 00:00:00")) is dt.datetime
    assert dec(1114, "2024-01-01 00:00:00").tzinfo is None
    assert dec(1184, "2024-01-01 00:00:00+00").tzinfo is UTC


@pytest.mark.parametrize("oid", sorted({o for o, _, _ in DECODE_CASES} | {1007, 1009, 99999}))
def test_null_is_none(oid: int) -> None:
    assert dec(oid, None) is None


def test_float4_is_the_stored_single() -> None:
    # asyncpg reads the 4-byte float: 0.1 comes back as the nearest single.
    assert dec(700, "0.1") == 0.10000000149011612
    assert dec(700, "3.4028235e+38") == 3.4028234663852886e38
    assert dec(701, "0.1") == 0.1


def test_unknown_type_is_lossy_str() -> None:
    assert dec(99999, b"x\xffy") == "x\ufffdy"
    assert dec(18, b"\\303") == "\\303"  # "char" >= 0x80 as PostgreSQL prints it


def test_infinity_like_asyncpg() -> None:
    # asyncpg: date.max/min, datetime.max/min, naive even for timestamptz
    assert dec(1082, "infinity") == dt.date.max
    assert dec(1082, "-infinity") == dt.date.min
    for oid in (1114, 1184):
        assert same(dec(oid, "infinity"), dt.datetime.max)
        assert same(dec(oid, "-infinity"), dt.datetime.min)
    assert dec(1182, "{infinity,-infinity}") == [dt.date.max, dt.date.min]


@pytest.mark.parametrize(
    ("text", "days"),
    [
        # asyncpg: months % 12 count 30 days, every 12 months 365 days
        ("P1M", 30),
        ("P12M", 365),
        ("P1Y", 365),
        ("P1Y2M3D", 365 + 60 + 3),
        ("P2Y1M", 2 * 365 + 30),
        ("P-13M", -395),
        ("P-1Y-1M", -395),
        ("P-1M15D", -15),
        ("P1M-30D", 0),
    ],
)
def test_interval_months_like_asyncpg(text: str, days: int) -> None:
    assert dec(1186, text) == dt.timedelta(days=days)


def test_interval_months_and_time_combine() -> None:
    got = dec(1186, "P1Y2M3DT4H5M6.5S")
    assert got == dt.timedelta(days=428, seconds=4 * 3600 + 5 * 60 + 6, microseconds=500000)
    neg = dec(1186, "P-1Y-2M3DT-4H-5M-6.5S")
    assert neg == dt.timedelta(days=-365 - 60 + 3, seconds=-(4 * 3600 + 5 * 60 + 6.5))


@pytest.mark.parametrize(
    ("oid", "text", "exc", "match"),
    [
        (1082, "0044-03-15 BC", ValueError, r"date 0044-03-15 BC is out of range.*1 to 9999"),
        (1082, "10000-01-01", ValueError, "date 10000-01-01 is out of range"),
        (
            1114,
            "0044-03-15 12:00:00 BC",
            ValueError,
            "timestamp 0044-03-15 12:00:00 BC is out of range",
        ),
        (1184, "0001-01-01 00:30:00+01", ValueError, "out of range for Python's datetime"),
        (
            1184,
            "9999-12-31 23:59:59-01",
            ValueError,
            "timestamp 10000-01-01 00:59:59 is out of range",
        ),
        (1083, "24:00:00", ValueError, "24:00:00"),
        (1186, "P178000000Y", OverflowError, "does not fit in datetime.timedelta"),
        (1186, "P1000000000D", OverflowError, "at most 999999999 days"),
        (23, "x", ValueError, 'invalid int4 value "x": not an integer'),
        (20, "9223372036854775808", ValueError, "invalid int8 value"),
        (16, "yes", ValueError, "invalid bool value"),
        (701, "inf", ValueError, "invalid float8 value"),
        (1700, "1.2.3", ValueError, "invalid numeric value"),
        (17, "\\x0", ValueError, "invalid bytea value.*odd number of hex digits"),
        (25, b"\xff", ValueError, "invalid text value.*invalid UTF-8"),
        (1082, "2023-02-29", ValueError, "invalid date value.*not a leap year"),
        (1083, "25:00:00", ValueError, "invalid time value"),
        (1184, "2024-01-01 00:00:00", ValueError, "invalid timestamptz value.*UTC offset"),
        (1186, "1 day", ValueError, "invalid interval value.*ISO 8601"),
        (2950, "nope", ValueError, "invalid uuid value"),
        (1007, "{1,x}", ValueError, r"invalid int4\[\] value: invalid int4 value \"x\""),
        (1007, "{1,2", ValueError, r"invalid int4\[\] value .*unterminated array"),
        (1007, "{{1},2}", ValueError, "mixes sub-arrays and elements"),
        (1182, '{"0044-03-15 BC"}', ValueError, "out of range"),
    ],
)
def test_decode_errors(oid: int, text: str | bytes, exc: type[Exception], match: str) -> None:
    with pytest.raises(exc, match=match):
        dec(oid, text)


def test_long_bad_value_error_is_short() -> None:
    with pytest.raises(ValueError) as ei:
        dec(23, "9" * 100_000)
    assert len(str(ei.value)) < 200


ARRAY_CASES: list[tuple[int, str, Any]] = [
    (1000, "{t,f,NULL}", [True, False, None]),
    (1001, '{"\\\\x00ff",NULL,"\\\\x"}', [b"\x00\xff", None, b""]),
    (1002, '{a,"\\\\303"}', ["a", "\\303"]),
    (1003, "{pg_catalog,public}", ["pg_catalog", "public"]),
    (1005, "{1,NULL}", [1, None]),
    (1007, "{}", []),
    (1007, "{{1,2},{3,4}}", [[1, 2], [3, 4]]),
    (1007, "{{{1}}}", [[[1]]]),
    (1007, "[0:1]={5,6}", [5, 6]),
    (1007, "[1:2][0:0]={{1},{2}}", [[1], [2]]),
    (1016, "{9223372036854775807}", [2**63 - 1]),
    (
        1009,
        '{"a b","c\\"d",NULL,"NULL",""," x ","back\\\\slash",ü,"{}","a,b"}',
        ["a b", 'c"d', None, "NULL", "", " x ", "back\\slash", "ü", "{}", "a,b"],
    ),
    (1009, '{{"a",NULL},{NULL,"b"}}', [["a", None], [None, "b"]]),
    (1015, '{"NULL",NULL}', ["NULL", None]),
    (1014, '{"ab "}', ["ab "]),
    (1028, "{1,2}", [1, 2]),
    (199, '{"[1,2]",NULL}', ["[1,2]", None]),
    (3807, '{"{\\"a\\": 1}",null}', ['{"a": 1}', None]),
    (143, '{"<a/>"}', ["<a/>"]),
    (1021, "{1.5,NaN}", [1.5, math.nan]),
    (1022, "{1e+300,-Infinity}", [1e300, -math.inf]),
    (1231, "{1.5,NaN}", [D("1.5"), D("NaN")]),
    (1182, "{2024-01-01,infinity}", [dt.date(2024, 1, 1), dt.date.max]),
    (1183, "{12:00:00,23:59:59.999999}", [dt.time(12), dt.time(23, 59, 59, 999999)]),
    (1115, '{"2024-01-01 00:00:00.25"}', [dt.datetime(2024, 1, 1, 0, 0, 0, 250000)]),
    (
        1185,
        '{"2024-01-01 00:00:00+01",infinity}',
        [dt.datetime(2023, 12, 31, 23, tzinfo=UTC), dt.datetime.max],
    ),
    (1187, "{P1Y,PT-1S}", [dt.timedelta(days=365), dt.timedelta(seconds=-1)]),
    (2951, "{00000000-0000-0000-0000-000000000001}", [uuid.UUID(int=1)]),
]


@pytest.mark.parametrize(("oid", "text", "want"), ARRAY_CASES)
def test_decode_arrays(oid: int, text: str, want: Any) -> None:
    got = dec(oid, text)
    assert same(got, want), (got, want)


# --- parameters ----------------------------------------------------------


class Color(enum.IntEnum):
    RED = 1


class Name(str, enum.Enum):
    BOB = "bob"


ENCODE_CASES: list[tuple[object, bytes | None]] = [
    (None, None),
    (True, b"t"),
    (False, b"f"),
    (0, b"0"),
    (-(2**63), b"-9223372036854775808"),
    (2**70, b"1180591620717411303424"),
    (Color.RED, b"1"),
    (1.5, b"1.5"),
    (0.1, b"0.1"),
    (-0.0, b"-0.0"),
    (1e300, b"1e300"),
    (1e-7, b"1e-7"),
    (math.nan, b"NaN"),
    (math.inf, b"Infinity"),
    (-math.inf, b"-Infinity"),
    (D("1.10"), b"1.10"),
    (D("-1E+3"), b"-1E+3"),
    (D("NaN"), b"NaN"),
    (D("-NaN"), b"NaN"),
    (D("sNaN"), b"NaN"),
    (D("Infinity"), b"Infinity"),
    (D("-Infinity"), b"-Infinity"),
    ("", b""),
    ('héllo "x" \\', 'héllo "x" \\'.encode()),
    (Name.BOB, b"bob"),
    (b"", b"\\x"),
    (b"\x00\x0a\xff", b"\\x000aff"),
    (bytearray(b"ab"), b"\\x6162"),
    (memoryview(b"cd"), b"\\x6364"),
    (dt.date(2024, 2, 29), b"2024-02-29"),
    (dt.date(1, 1, 2), b"0001-01-02"),
    (dt.date.max, b"infinity"),
    (dt.date.min, b"-infinity"),
    (dt.time(0, 0), b"00:00:00"),
    (dt.time(13, 4, 5, 6), b"13:04:05.000006"),
    (dt.time(12, 0, tzinfo=tz(hours=5, minutes=30)), b"12:00:00+05:30"),
    (dt.datetime(2024, 1, 2, 3, 4, 5), b"2024-01-02 03:04:05"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, 500000), b"2024-01-02 03:04:05.500000"),
    (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), b"2024-01-02 03:04:05+00:00"),
    (dt.datetime(2024, 1, 2, tzinfo=tz(hours=-8)), b"2024-01-02 00:00:00-08:00"),
    (dt.datetime(1900, 1, 1, tzinfo=tz(minutes=19, seconds=32)), b"1900-01-01 00:00:00+00:19:32"),
    (dt.datetime(1900, 1, 1, tzinfo=tz(minutes=-19, seconds=-32)), b"1900-01-01 00:00:00-00:19:32"),
    (dt.datetime.max, b"infinity"),
    (dt.datetime.min, b"-infinity"),
    (dt.datetime.max.replace(tzinfo=UTC), b"infinity"),
    (dt.datetime.min.replace(tzinfo=UTC), b"-infinity"),
    (dt.datetime(9999, 12, 31, 22, 59, 59, 999999, tzinfo=tz(hours=-1)), b"infinity"),
    (
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=tz(hours=1)),
        b"9999-12-31 23:59:59.999999+01:00",
    ),
    (dt.timedelta(0), b"P0DT0S"),
    (dt.timedelta(seconds=3600.5), b"P0DT3600.500000S"),
    (dt.timedelta(days=-1, seconds=5, microseconds=7), b"P-1DT5.000007S"),
    (dt.timedelta(microseconds=-1), b"P-1DT86399.999999S"),
    (dt.timedelta.max, b"P999999999DT86399.999999S"),
    (uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), b"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    ({}, b"{}"),
    ({"a": [1, None, "ü"]}, b'{"a": [1, null, "\\u00fc"]}'),
    ([], b"{}"),
    ((), b"{}"),
    ([1, 2, None], b'{"1","2",NULL}'),
    ((1, 2), b'{"1","2"}'),
    ([[1, 2], (3, 4)], b'{{"1","2"},{"3","4"}}'),
    ([[None]], b"{{NULL}}"),
    (
        ["a b", 'c"d', "back\\slash", "NULL", "", "{x}", "a,b"],
        b'{"a b","c\\"d","back\\\\slash","NULL","","{x}","a,b"}',
    ),
    ([b"\x00\xff", None], b'{"\\\\x00ff",NULL}'),
    ([True, 1.5, D("2"), dt.date(2024, 1, 1)], b'{"t","1.5","2","2024-01-01"}'),
    ([{"a": '"'}], b'{"{\\"a\\": \\"\\\\\\"\\"}"}'),
    (
        [dt.datetime(2024, 1, 1, tzinfo=UTC), dt.timedelta(seconds=1)],
        b'{"2024-01-01 00:00:00+00:00","P0DT1S"}',
    ),
]


@pytest.mark.parametrize(("obj", "want"), ENCODE_CASES, ids=repr)
def test_encode(obj: object, want: bytes | None) -> None:
    assert enc(obj) == want


def test_bool_is_not_int() -> None:
    assert enc(True) == b"t"
    assert enc(1) == b"1"
    assert enc([True, 1]) == b'{"t","1"}'


@pytest.mark.parametrize(
    "obj",
    [object(), {1, 2}, frozenset(), 1j, dt.timezone.utc, type, Ellipsis],
    ids=repr,
)
def test_encode_unsupported_type(obj: object) -> None:
    with pytest.raises(TypeError) as ei:
        enc(obj)
    msg = str(ei.value)
    assert type(obj).__name__ in msg
    names = "None bool int float decimal.Decimal str bytes datetime.date datetime.timedelta"
    for name in [*names.split(), "uuid.UUID", "dict", "list"]:
        assert name in msg


def test_encode_unsupported_inside_array() -> None:
    with pytest.raises(TypeError, match="type object"):
        enc([1, object()])


def test_encode_errors() -> None:
    with pytest.raises(ValueError, match="nested more than 6 deep"):
        enc([[[[[[[1]]]]]]])
    assert enc([[[[[[1]]]]]]) == b'{{{{{{"1"}}}}}}'
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested more than 6 deep"):
        enc(loop)
    with pytest.raises(ValueError, match="microseconds"):
        enc(dt.datetime(2024, 1, 1, tzinfo=tz(microseconds=5)))
    with pytest.raises(UnicodeEncodeError):
        enc("\ud800")
    with pytest.raises(ValueError, match="cannot contain NUL"):
        enc("a\x00b")
    with pytest.raises(ValueError, match="cannot contain NUL"):
        enc(["ok", "a\x00b"])
    with pytest.raises(TypeError):
        enc({"a": object()})  # json.dumps' own error


# --- both ways -----------------------------------------------------------

ROUND_TRIP: list[tuple[int, object]] = [
    (16, True),
    (16, False),
    (20, -(2**63)),
    (23, 7),
    (701, 0.1),
    (701, -0.0),
    (701, 5e-324),
    (701, 1.7976931348623157e308),
    (701, math.nan),
    (701, -math.inf),
    (1700, D("-123.4500")),
    (1700, D("NaN")),
    (25, 'héllo "x" \\ {} ,'),
    (17, bytes(range(256))),
    (1082, dt.date(2024, 2, 29)),
    (1082, dt.date.max),
    (1082, dt.date.min),
    (1083, dt.time(23, 59, 59, 999999)),
    (1114, dt.datetime(2024, 1, 2, 3, 4, 5, 6)),
    (1114, dt.datetime.max),
    (1184, dt.datetime(2024, 1, 2, 3, 4, 5, 6, tzinfo=UTC)),
    (1186, dt.timedelta(days=-3, seconds=5, microseconds=7)),
    (1186, dt.timedelta.max),
    (1186, dt.timedelta.min),
    (2950, uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
    (3802, '{"a": [1, 2.5, null, "ü\\"\\\\"]}'),
    (1007, [1, None, 3]),
    (1007, [[1, 2], [3, 4]]),
    (1009, ["a b", 'c"d', None, "NULL", "", " x ", "back\\slash", "{}", "a,b", "ü"]),
    (1001, [b"\x00\xff", None, b""]),
    (1000, [True, False]),
    (1022, [1.5, math.inf]),
    (1231, [D("1.5"), D("NaN")]),
    (1182, [dt.date(2024, 1, 1), dt.date.max]),
    (1183, [dt.time(1, 2, 3)]),
    (1115, [dt.datetime(2024, 1, 1, 1, 2, 3, 4)]),
    (1185, [dt.datetime(2024, 1, 1, tzinfo=UTC)]),
    (1187, [dt.timedelta(seconds=1.5), dt.timedelta(days=-1)]),
    (2951, [uuid.UUID(int=1)]),
    (3807, ['{"a": 1}', None]),
]


@pytest.mark.parametrize(("oid", "value"), ROUND_TRIP, ids=repr)
def test_round_trip_through_text(oid: int, value: object) -> None:
    """Our parameter text is also text our decoder reads back to the value."""
    assert same(dec(oid, enc(value)), value)


def test_aware_datetime_comes_back_in_utc() -> None:
    v = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=tz(hours=5, minutes=30))
    got = dec(1184, enc(v))
    assert got == v
    assert got.tzinfo is UTC
    assert got == dt.datetime(2024, 1, 1, 21, 34, 5, tzinfo=UTC)
