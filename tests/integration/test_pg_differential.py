"""iokernel's PostgreSQL value conversion, checked against asyncpg.

The same queries run through asyncpg (the reference, as it comes: json/jsonb
are str) and through iokernel's ``pg.Client`` and ``pg.AsyncClient``; results
must be equal *and* of the same Python types. With ``set_type_codec(...,
decoder=json.loads)`` on both sides, json/jsonb results are objects on both
(``test_json_codec_matches_asyncpg``).

* ``CORPUS``: literals of every supported type, NULLs, arrays, edge values
  (NaN/Infinity, extreme integers, large numerics, negative intervals with
  months, timestamps with microseconds and time zones, unicode, empty strings
  and arrays, a 1 MiB bytea), also several columns at once.
* ``UNKNOWN``: less common types: decoded as asyncpg decodes them (with
  ``iokernel.pgtypes`` for asyncpg's own classes), or, for types asyncpg
  returns as text, PostgreSQL's text output (``(expr)::text``).
* ``PARAMS``: Python values sent as parameters, ``SELECT $1::type``, and read
  back: asyncpg's result for the same call is the reference.

Comparison (:func:`same`): same type and value, recursively through lists,
tuples and dicts; floats NaN-aware and signed-zero-aware; ``Decimal`` by value
and scale (digits after the point: ``1.500`` is not ``1.5``); aware datetimes by
instant and UTC offset.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from iokernel import pg
from tests.integration.pg_compare import same
from tests.servers import PostgresServer

UTC = dt.timezone.utc
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
NEG = dt.timezone(dt.timedelta(hours=-9, minutes=-30))
U1 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

# (id, query): every row and column is compared.
CORPUS: list[tuple[str, str]] = [
    # integers
    ("int2-edges", "SELECT (-32768)::int2, 32767::int2, 0::int2"),
    ("int4-edges", "SELECT (-2147483648)::int4, 2147483647::int4, -1::int4"),
    ("int8-edges", "SELECT (-9223372036854775808)::int8, 9223372036854775807::int8"),
    ("int-plain", "SELECT 1, 42, -7"),
    # floats
    ("float4", "SELECT 0.1::float4, 3.4028235e38::float4, 1.17549435e-38::float4, '-0'::float4"),
    ("float4-special", "SELECT 'NaN'::float4, 'Infinity'::float4, '-Infinity'::float4"),
    ("float8", "SELECT 0.1::float8, 1e308::float8, 5e-324::float8, '-0'::float8, pi()"),
    ("float8-special", "SELECT 'NaN'::float8, 'Infinity'::float8, '-Infinity'::float8"),
    # numeric
    ("numeric-small", "SELECT 0::numeric, 1.500::numeric, -0.0001::numeric, 3.14159::numeric(10, 2)"),
    ("numeric-special", "SELECT 'NaN'::numeric, 'Infinity'::numeric, '-Infinity'::numeric"),
    ("numeric-large",
     "SELECT 123456789012345678901234567890.123456789012345678901234567890::numeric"),
    ("numeric-exp", "SELECT 1e-20::numeric, 1e100::numeric, -1e-30::numeric"),
    ("numeric-ints", "SELECT 10000::numeric, 100000000::numeric, 0.00010000::numeric"),
    ("numeric-sum", "SELECT sum(x) FROM (VALUES (1.25::numeric), (2.5), (NULL)) v(x)"),
    # text
    ("text-empty", "SELECT ''::text, ''::varchar"),
    ("text-unicode", "SELECT 'héllo ✓ 日本語 😀'::text, 'Ωmega'::varchar(10)"),
    ("text-escapes", "SELECT E'line\\nbreak\\ttab\\\\ \"quote\" ''single'''::text"),
    ("text-large", "SELECT repeat('ab✓', 100000)"),
    ("bpchar", "SELECT 'ab'::char(4), 'x'::character"),
    ("name", "SELECT 'nm'::name, current_user"),
    # bytea
    ("bytea-small", "SELECT ''::bytea, '\\x00ff10'::bytea, 'abc'::bytea"),
    ("bytea-1mib", "SELECT decode(repeat('00ff7f80', 262144), 'hex')"),
    # bool
    ("bool", "SELECT true, false, NULL::bool"),
    # date / time
    ("date", "SELECT '2024-02-29'::date, '0001-01-01'::date, '9999-12-31'::date"),
    ("date-input-order", "SELECT '03/02/2024'::date, '2024-02-03'::date"),
    ("date-epoch", "SELECT '1970-01-01'::date, '2000-01-01'::date, '1999-12-31'::date"),
    ("time", "SELECT '13:14:15.123456'::time, '00:00'::time, '23:59:59.999999'::time"),
    ("timestamp", "SELECT '2024-02-29 13:14:15.123456'::timestamp, "
                  "'1970-01-01 00:00:00'::timestamp, '1999-12-31 23:59:59.5'::timestamp"),
    ("timestamp-edges", "SELECT '0001-01-01 00:00:00'::timestamp, "
                        "'9999-12-31 23:59:59.999999'::timestamp"),
    ("timestamp-precision", "SELECT '2024-01-01 00:00:00.123456789'::timestamp(3)"),
    ("timestamptz", "SELECT '2024-06-01 12:00:00.000001+05:30'::timestamptz, "
                    "'2000-01-01 00:00:00Z'::timestamptz, '1969-07-20 20:17:40-04'::timestamptz"),
    ("timestamptz-session-zone",
     "SELECT '2024-01-15 08:00:00'::timestamptz, '1900-01-01 00:00:00.5+00'::timestamptz"),
    ("timestamp-infinity", "SELECT 'infinity'::timestamp, '-infinity'::timestamp"),
    ("timestamptz-infinity", "SELECT 'infinity'::timestamptz, '-infinity'::timestamptz"),
    ("date-infinity", "SELECT 'infinity'::date, '-infinity'::date"),
    # intervals
    ("interval", "SELECT '1 day 02:03:04.5'::interval, '0'::interval, '00:00:00.000001'::interval"),
    ("interval-negative", "SELECT '-1 day -00:00:01'::interval, '-00:00:00.000001'::interval"),
    ("interval-months", "SELECT '1 year 2 mons 3 days'::interval, '-3 mons'::interval"),
    ("interval-mixed-signs", "SELECT '-1 mon +2 days -00:00:00.000001'::interval"),
    ("interval-big", "SELECT '100000 days 23:59:59.999999'::interval"),
    # uuid
    ("uuid", f"SELECT '{U1}'::uuid, '00000000-0000-0000-0000-000000000000'::uuid, "
             "'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid"),
    # json / jsonb
    ("json-object", """SELECT '{"a": [1, 2.5, "x", null, true], "b": {"c": "é"}}'::json"""),
    ("jsonb-object", """SELECT '{"b": 1, "a": {"z": [], "y": {}}}'::jsonb"""),
    ("json-scalars", """SELECT '[]'::json, '"s"'::json, '3'::jsonb, 'false'::jsonb"""),
    ("json-null", "SELECT 'null'::json, 'null'::jsonb, NULL::jsonb"),
    ("jsonb-numbers", "SELECT '12345678901234567890'::jsonb, '1.0'::jsonb, '-0.5e3'::jsonb"),
    ("json-unicode", """SELECT '{"k": "\\u00e9 ✓ 😀"}'::json, '["\\n\\t"]'::jsonb"""),
    ("json-agg", "SELECT json_agg(g), jsonb_build_object('n', 1, 'l', ARRAY[1, 2]) "
                 "FROM generate_series(1, 3) g"),
    # json keeps its text as written, jsonb is the server's normal form
    ("json-whitespace", """SELECT ' { "a" :  1,"a":2 } '::json, ' { "a" :  1,"a":2 } '::jsonb"""),
    # arrays
    ("array-int", "SELECT ARRAY[1, 2, 3], ARRAY[1, NULL, 3]::int8[], ARRAY[-1]::int2[]"),
    ("array-empty", "SELECT ARRAY[]::int4[], ARRAY[]::text[], '{}'::float8[]"),
    ("array-text", """SELECT ARRAY['a', '', NULL, 'é"\\{},', 'NULL', ' sp ']::text[]"""),
    ("array-varchar", "SELECT ARRAY['x', 'y']::varchar[]"),
    ("array-numeric", "SELECT ARRAY[1.5, NULL, 'NaN', 100]::numeric[]"),
    ("array-float", "SELECT ARRAY[0.5, 'Infinity', '-0']::float8[], ARRAY[0.1]::float4[]"),
    ("array-bool", "SELECT ARRAY[true, false, NULL]"),
    ("array-bytea", "SELECT ARRAY['\\x00ff'::bytea, ''::bytea, NULL]"),
    ("array-date-time", "SELECT ARRAY['2024-01-01'::date], ARRAY['12:00:01.5'::time], "
                        "ARRAY['2024-01-01 01:02:03'::timestamp]"),
    ("array-timestamptz", "SELECT ARRAY['2024-06-01 12:00+02'::timestamptz, NULL]"),
    ("array-interval", "SELECT ARRAY['1 day'::interval, '-2 hours'::interval]"),
    ("array-uuid", f"SELECT ARRAY['{U1}'::uuid]"),
    ("array-jsonb", """SELECT ARRAY['{"a": 1}'::jsonb, '[1, "x"]'::jsonb]"""),
    ("array-json", """SELECT ARRAY['{"a":  1}'::json, NULL], ARRAY[[' 2'::jsonb]]"""),
    ("array-lower-bound", "SELECT '[2:3]={1,2}'::int[]"),
    ("array-agg", "SELECT array_agg(g ORDER BY g) FROM generate_series(1, 1000) g"),
    # NULLs
    ("nulls", "SELECT NULL::int, NULL::text, NULL::numeric, NULL::date, NULL::int[], NULL::uuid"),
    ("null-untyped", "SELECT NULL"),
    # rows of several types at once
    ("mixed-row", f"SELECT 1::int2 AS a, 2::int4 AS b, 3::int8 AS c, 'x'::text AS d, "
                  f"NULL::bool AS e, 1.5::numeric AS f, '{U1}'::uuid AS g"),
    ("many-rows", "SELECT g, g::text, g % 2 = 0, g * 0.5 FROM generate_series(1, 2000) g"),
    ("unknown-literal", "SELECT 'plain literal'"),
    ("column-names", 'SELECT 1 AS "Mixed Case", 2 AS "é", 3 AS "select"'),
]

# (id, expression): converted to text, or decoded as asyncpg does.
UNKNOWN: list[tuple[str, str]] = [
    ("inet", "'192.168.0.1/24'::inet"),
    ("cidr", "'10.0.0.0/8'::cidr"),
    ("macaddr", "'08:00:2b:01:02:03'::macaddr"),
    ("point", "'(1.5,2)'::point"),
    ("money", "'12.34'::money"),
    ("int4range", "'[1,5)'::int4range"),
    ("tsrange", "'[2024-01-01,2024-02-01)'::tsrange"),
    ("tsvector", "'a fat cat'::tsvector"),
    ("bit", "B'101'::bit(3)"),
    ("varbit", "B'10110'::varbit"),
    ("oid", "42::oid"),
    ("regclass", "'pg_class'::regclass"),
    ("timetz", "'12:00:01.5+03'::timetz"),
    ("char1", "'c'::\"char\""),
    ("xml", "'<a>x</a>'::xml"),
    ("int2vector", "'1 2'::int2vector"),
    ("record", "ROW(1, 'a', NULL)"),
    ("array-2d", "ARRAY[[1, 2], [3, 4]]"),
    ("pg_lsn", "'16/B374D848'::pg_lsn"),
]

# (id, type, value): SELECT $1::type with the value as the parameter.
PARAMS: list[tuple[str, str, Any]] = [
    ("int2", "int2", 7),
    ("int4-neg", "int4", -5),
    ("int8-max", "int8", 2**63 - 1),
    ("int8-min", "int8", -(2**63)),
    ("int4-zero", "int4", 0),
    ("float8", "float8", 0.1),
    ("float8-nan", "float8", float("nan")),
    ("float8-inf", "float8", float("-inf")),
    ("float8-negzero", "float8", -0.0),
    ("float4", "float4", 0.1),
    ("float8-from-int", "float8", 3),
    ("numeric", "numeric", Decimal("1.500")),
    ("numeric-tiny", "numeric", Decimal("-1E-30")),
    ("numeric-nan", "numeric", Decimal("NaN")),
    ("numeric-inf", "numeric", Decimal("Infinity")),
    ("numeric-large", "numeric", Decimal("123456789012345678901234567890.000000001")),
    ("numeric-int", "numeric", Decimal(10) ** 30),
    ("text", "text", "é😀 ✓"),
    ("text-empty", "text", ""),
    ("text-nul-free-control", "text", "a\tb\nc\r\\"),
    ("varchar", "varchar", "v"),
    ("bytea", "bytea", b"\x00\xff" * 1000),
    ("bytea-empty", "bytea", b""),
    ("bool-true", "bool", True),
    ("bool-false", "bool", False),
    ("date", "date", dt.date(2024, 2, 29)),
    ("date-min", "date", dt.date(1, 1, 1)),
    ("date-max", "date", dt.date(9999, 12, 31)),
    ("time", "time", dt.time(13, 14, 15, 123456)),
    ("time-midnight", "time", dt.time(0, 0)),
    ("timestamp", "timestamp", dt.datetime(2024, 2, 29, 13, 14, 15, 123456)),
    ("timestamp-min", "timestamp", dt.datetime(1, 1, 1)),
    ("timestamptz-ist", "timestamptz", dt.datetime(2024, 6, 1, 12, 0, 0, 1, tzinfo=IST)),
    ("timestamptz-utc", "timestamptz", dt.datetime(2000, 1, 1, tzinfo=UTC)),
    ("timestamptz-neg", "timestamptz", dt.datetime(1969, 7, 20, 20, 17, 40, tzinfo=NEG)),
    ("interval", "interval", dt.timedelta(days=1, seconds=7384, microseconds=500000)),
    ("interval-neg", "interval", dt.timedelta(days=-1, seconds=5)),
    ("interval-micro", "interval", dt.timedelta(microseconds=-1)),
    ("interval-big", "interval", dt.timedelta(days=400000)),
    ("uuid", "uuid", uuid.UUID(U1)),
    ("json-str", "json", '{"a": [1, 2.5, "x", null, true],  "b": {"c": "é"}}'),
    ("jsonb-str", "jsonb", '{"b": 1, "a": {"z": [], "y": {}}}'),
    ("jsonb-empty", "jsonb", "{}"),
    ("jsonb-array", "jsonb[]", ['{"a": 1}', None, "[]"]),
    ("int4-array", "int4[]", [1, 2, None]),
    ("int8-array-empty", "int8[]", []),
    ("text-array", "text[]", ["a", None, "é", "", 'q"{},\\']),
    ("float8-array", "float8[]", [0.5, float("inf")]),
    ("numeric-array", "numeric[]", [Decimal("1.5"), None]),
    ("bool-array", "bool[]", [True, False]),
    ("date-array", "date[]", [dt.date(2024, 1, 1)]),
    ("uuid-array", "uuid[]", [uuid.UUID(U1)]),
    ("bytea-array", "bytea[]", [b"\x00", b""]),
    ("null-int", "int4", None),
    ("null-text", "text", None),
    ("null-jsonb", "jsonb", None),
    ("null-array", "int4[]", None),
]

# Queries where PostgreSQL infers the parameter's type from context.
INFERRED: list[tuple[str, str, tuple[Any, ...]]] = [
    ("where-int", "SELECT v FROM (VALUES (1, 'a'), (2, 'b')) t(id, v) WHERE id = $1", (2,)),
    ("arith", "SELECT $1 + 1", (41,)),
    ("concat", "SELECT $1 || 'x'", ("a",)),
    ("any-array", "SELECT 3 = ANY($1)", ([1, 2, 3],)),
    ("text-in", "SELECT upper($1)", ("héllo",)),
    ("two-params", "SELECT $1::int + $2::int, $3::text", (1, 2, "z")),
]


# -------------------------------------------------------------- comparison
def describe(v: Any) -> str:
    text = repr(v)
    return text if len(text) < 300 else text[:300] + f"... ({len(text)} chars)"


# -------------------------------------------------------------- reference
async def _reference(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        out: dict[str, Any] = {}
        for key, sql in CORPUS:
            rows = await conn.fetch(sql)
            out[f"q:{key}"] = ([tuple(r) for r in rows], [list(r.keys()) for r in rows])
        for key, expr in UNKNOWN:
            out[f"u:{key}"] = (
                await conn.fetchval(f"SELECT ({expr})::text"),
                await conn.fetchval(f"SELECT {expr}"),
            )
        for key, typ, value in PARAMS:
            out[f"p:{key}"] = await conn.fetchval(f"SELECT $1::{typ}", value)
        for key, sql, args in INFERRED:
            out[f"i:{key}"] = tuple(await conn.fetchrow(sql, *args))
        return out
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def reference(pg_server: PostgresServer) -> dict[str, Any]:
    """asyncpg's answers to every query (collected once, in a thread of its own)."""
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, _reference(pg_server.dsn())).result(120)


@pytest.fixture(params=["sync", "async"])
async def call(request: pytest.FixtureRequest, pg_server: PostgresServer) -> Any:
    """call(method, sql, *args): the method of a pg.Client or pg.AsyncClient, awaited."""
    is_async = request.param == "async"
    cls = pg.AsyncClient if is_async else pg.Client
    client = cls(pg_server.dsn(application_name=f"iok-diff-{request.param}"), timeout=30.0)

    async def _call(method: str, sql: str, *args: Any) -> Any:
        result = getattr(client, method)(sql, *args)
        assert inspect.isawaitable(result) == is_async
        return await result if is_async else result

    yield _call
    closed = client.close()
    if inspect.isawaitable(closed):
        await closed


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize(("key", "sql"), CORPUS, ids=[k for k, _ in CORPUS])
async def test_literal_matches_asyncpg(reference: dict[str, Any], call: Any, key: str,
                                       sql: str) -> None:
    want_rows, want_keys = reference[f"q:{key}"]
    rows = await call("fetch", sql)
    got_rows = [tuple(r) for r in rows]
    assert len(got_rows) == len(want_rows)
    for i, (got, want) in enumerate(zip(got_rows, want_rows)):
        assert same(got, want), f"row {i}: iokernel {describe(got)} != asyncpg {describe(want)}"
    assert [list(r.keys()) for r in rows] == want_keys


@pytest.mark.parametrize(("key", "expr"), UNKNOWN, ids=[k for k, _ in UNKNOWN])
async def test_unknown_type_comes_back_as_text(reference: dict[str, Any], call: Any, key: str,
                                               expr: str) -> None:
    text, decoded = reference[f"u:{key}"]
    got = await call("fetchval", f"SELECT {expr}")
    assert same(got, text) or same(got, decoded), (
        f"iokernel {describe(got)}; expected the text {text!r} (or asyncpg's {describe(decoded)})"
    )


@pytest.mark.parametrize(("key", "typ", "value"), PARAMS, ids=[k for k, _, _ in PARAMS])
async def test_parameter_round_trip_matches_asyncpg(
    reference: dict[str, Any], call: Any, key: str, typ: str, value: Any
) -> None:
    want = reference[f"p:{key}"]
    got = await call("fetchval", f"SELECT $1::{typ}", value)
    assert same(got, want), f"iokernel {describe(got)} != asyncpg {describe(want)}"


@pytest.mark.parametrize(("key", "sql", "args"), INFERRED, ids=[k for k, _, _ in INFERRED])
async def test_inferred_parameter_types_match_asyncpg(
    reference: dict[str, Any], call: Any, key: str, sql: str, args: tuple[Any, ...]
) -> None:
    want = reference[f"i:{key}"]
    row = await call("fetchrow", sql, *args)
    assert same(tuple(row), want), f"iokernel {describe(tuple(row))} != asyncpg {describe(want)}"


async def test_python_types_of_each_postgres_type(call: Any) -> None:
    """The mapping itself, spelled out (independent of asyncpg)."""
    row = await call(
        "fetchrow",
        "SELECT 1::int2, 1::int4, 1::int8, 1::float4, 1::float8, 1::numeric, 't'::text, "
        "'v'::varchar, 'b'::bytea, true, '2024-01-01'::date, '01:02'::time, "
        "'2024-01-01 01:02'::timestamp, '2024-01-01 01:02+00'::timestamptz, "
        f"'1 day'::interval, '{U1}'::uuid, '{{}}'::json, '[1]'::jsonb, ARRAY[1], NULL",
    )
    types = [type(v) for v in row]
    assert types == [
        int, int, int, float, float, Decimal, str, str, bytes, bool, dt.date, dt.time,
        dt.datetime, dt.datetime, dt.timedelta, pg.UUID, str, str, list, type(None),
    ]
    assert row[12].tzinfo is None
    assert row[13].tzinfo is not None and row[13].utcoffset() == dt.timedelta(0)


async def test_json_parameters_beyond_str(call: Any) -> None:
    """Besides the str asyncpg takes, json/jsonb parameters take any value
    ``json.dumps`` writes (documented superset); results stay text."""
    doc = {"b": 1, "a": [1, None]}
    assert await call("fetchval", "SELECT $1::json", doc) == '{"b": 1, "a": [1, null]}'
    assert await call("fetchval", "SELECT $1::jsonb", doc) == '{"a": [1, null], "b": 1}'
    assert await call("fetchval", "SELECT $1::jsonb", ' "s" ') == '"s"'


# ------------------------------------------ json/jsonb decoded to objects
JSON_CORPUS = [(k, q) for k, q in CORPUS if "json" in k]
JSON_PARAMS: list[tuple[str, str, Any]] = [
    ("json-dict", "json", {"a": [1, 2.5, "x", None, True], "b": {"c": "é"}}),
    ("jsonb-dict", "jsonb", {"b": 1, "a": {"z": [], "y": {}}}),
    ("jsonb-list", "jsonb", [1, "x", None, 12345678901234567890]),
    ("jsonb-str", "jsonb", "a str is dumped too"),
    ("jsonb-array", "jsonb[]", [{"a": 1}, None, {"b": [2]}]),
]


async def _json_reference(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        for typ in ("json", "jsonb"):
            await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads,
                                      schema="pg_catalog")
        out: dict[str, Any] = {}
        for key, sql in JSON_CORPUS:
            out[f"q:{key}"] = [tuple(r) for r in await conn.fetch(sql)]
        for key, typ, value in JSON_PARAMS:
            out[f"p:{key}"] = await conn.fetchval(f"SELECT $1::{typ}", value)
        return out
    finally:
        await conn.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_json_codec_matches_asyncpg(pg_server: PostgresServer, mode: str) -> None:
    """asyncpg's way to get objects, ``set_type_codec("jsonb",
    encoder=json.dumps, decoder=json.loads, schema="pg_catalog")``, gives
    the same results here (decoded by the native parser: keys shared
    between rows, which ``json.loads`` does not do)."""
    with ThreadPoolExecutor(1) as ex:
        ref = ex.submit(asyncio.run, _json_reference(pg_server.dsn())).result(120)
    is_async = mode == "async"
    # a service of its own: a codec applies to every client of its service
    dsn = pg_server.dsn(application_name=f"iok-json-codec-{mode}")
    client = (pg.AsyncClient if is_async else pg.Client)(dsn, timeout=30.0)

    async def call(method: str, sql: str, *args: Any, **kw: Any) -> Any:
        result = getattr(client, method)(sql, *args, **kw)
        return await result if is_async else result

    bad: list[str] = []
    try:
        for typ in ("json", "jsonb"):
            await call("set_type_codec", typ, encoder=json.dumps, decoder=json.loads,
                       schema="pg_catalog")
        for key, sql in JSON_CORPUS:
            got = [tuple(r) for r in await call("fetch", sql)]
            if not same(got, ref[f"q:{key}"]):
                bad.append(f"{key}: iokernel {describe(got)} != asyncpg {describe(ref[f'q:{key}'])}")
        for key, typ, value in JSON_PARAMS:
            got = await call("fetchval", f"SELECT $1::{typ}", value)
            if not same(got, ref[f"p:{key}"]):
                bad.append(f"param {key}: iokernel {describe(got)} != "
                           f"asyncpg {describe(ref[f'p:{key}'])}")
        rows = await call("fetch", "SELECT jsonb_build_object('tag', g) FROM generate_series(1, 2) g")
        assert [r[0] for r in rows] == [{"tag": 1}, {"tag": 2}]
        assert next(iter(rows[0][0])) is next(iter(rows[1][0]))
    finally:
        closed = client.close()
        if inspect.isawaitable(closed):
            await closed
    assert not bad, "\n".join(bad)


# ------------------------------------------- a server with unusual defaults
ODD_SETTINGS = [
    "datestyle = 'SQL, DMY'",
    "intervalstyle = 'postgres_verbose'",
    "timezone = 'Asia/Kolkata'",
    "extra_float_digits = 0",
    "bytea_output = 'escape'",
    "lc_monetary = 'C'",
]


# literals whose meaning depends on the session's TimeZone
TZ_DEPENDENT = {"timestamptz-session-zone"}


@pytest.fixture(scope="module")
def odd_server() -> Any:
    """PostgreSQL whose defaults would break a naive text-format parser."""
    srv = PostgresServer(extra_config=ODD_SETTINGS)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop(cleanup=True)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_corpus_on_a_server_with_unusual_settings(odd_server: PostgresServer,
                                                        mode: str) -> None:
    """DateStyle, IntervalStyle, TimeZone, extra_float_digits and bytea_output set
    oddly on the server: every corpus query and parameter still matches asyncpg
    (whose binary format does not depend on them)."""
    with ThreadPoolExecutor(1) as ex:
        ref = ex.submit(asyncio.run, _reference(odd_server.dsn())).result(120)
    is_async = mode == "async"
    client = (pg.AsyncClient if is_async else pg.Client)(odd_server.dsn(), timeout=30.0)

    async def call(method: str, sql: str, *args: Any) -> Any:
        result = getattr(client, method)(sql, *args)
        return await result if is_async else result

    bad: list[str] = []
    try:
        for key, sql in CORPUS:
            if key in TZ_DEPENDENT:
                continue  # see test_server_time_zone_is_the_session_time_zone
            want_rows, _ = ref[f"q:{key}"]
            got = [tuple(r) for r in await call("fetch", sql)]
            if not same(got, want_rows):
                bad.append(f"{key}: iokernel {describe(got)} != asyncpg {describe(want_rows)}")
        for key, typ, value in PARAMS:
            got = await call("fetchval", f"SELECT $1::{typ}", value)
            if not same(got, ref[f"p:{key}"]):
                bad.append(f"param {key}: iokernel {describe(got)} != "
                           f"asyncpg {describe(ref[f'p:{key}'])}")
    finally:
        closed = client.close()
        if inspect.isawaitable(closed):
            await closed
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_server_time_zone_is_the_session_time_zone(odd_server: PostgresServer,
                                                         mode: str) -> None:
    is_async = mode == "async"
    client = (pg.AsyncClient if is_async else pg.Client)(odd_server.dsn(), timeout=30.0)

    async def call(method: str, sql: str) -> Any:
        result = getattr(client, method)(sql)
        return await result if is_async else result

    try:
        assert await call("fetchval", "SHOW TimeZone") == "Asia/Kolkata"
        got = await call("fetchval", "SELECT '2024-01-15 08:00:00'::timestamptz")
        assert got == dt.datetime(2024, 1, 15, 2, 30, tzinfo=UTC)
    finally:
        closed = client.close()
        if inspect.isawaitable(closed):
            await closed
