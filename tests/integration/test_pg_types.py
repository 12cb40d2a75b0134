"""Every type in asyncpg's type table, both directions, against asyncpg.

For each PostgreSQL type, ``VALUES`` holds Python values asyncpg accepts.
asyncpg (the reference, as it comes: json/jsonb results are str) and
iokernel's ``Client``/``AsyncClient`` each:

* send them as parameters (``SELECT $1::type``): same result;
* store them in a table of that type, by ``execute`` and by ``executemany``:
  the stored text (``v::text``) is the same, and reading the table back
  gives the same Python values;
* store them by ``copy_records_to_table`` (the binary COPY format, and the
  text format a text-only column forces) and by an ``executemany`` big
  enough to stream its rows after the first chunk: the same stored text as
  asyncpg's ``execute`` and ``copy_records_to_table``;
* read the stored text back as a literal (``SELECT 'text'::type``).

Bad input: every candidate in ``CANDIDATES`` is sent for every type, as the
second parameter. Whatever asyncpg refuses client-side, iokernel refuses
with ``DataError`` naming ``$2`` and the type; whatever asyncpg accepts,
iokernel accepts and stores the same, except the deliberate differences in
``DELIBERATE`` (docs/architecture.md says why).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from iokernel import pg
from iokernel.pgtypes import BitString, Path, Point, Polygon, Range
from tests.integration.pg_compare import same
from tests.servers import PostgresServer

UTC = dt.timezone.utc
IST = dt.timezone(dt.timedelta(hours=5, minutes=30))
U1 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

# (type, values): asyncpg's type table (docs "Type Conversion"), all accepted by asyncpg.
VALUES: list[tuple[str, list[Any]]] = [
    ("bool", [True, False]),
    ("int2", [0, -32768, 32767]),
    ("int4", [7, -(2**31), 2**31 - 1, True, 7.0, Decimal(8)]),
    ("int8", [2**63 - 1, -(2**63)]),
    ("oid", [0, 4294967295]),
    ("float4", [0.5, 0.1, float("inf"), 3]),
    ("float8", [0.1, -0.0, float("nan"), 1e308, 3, Decimal("1.5")]),
    ("numeric", [Decimal("1.500"), Decimal("-1E-30"), Decimal("NaN"), Decimal("-Infinity"),
                 5, 0.1, "3.25", Decimal(10) ** 30, Decimal("0.00")]),
    ("text", ["", "é😀 ✓", "a\tb\\"]),
    ("varchar", ["v"]),
    ("char(3)", ["ab"]),
    ("name", ["nm"]),
    ('"char"', [b"a"]),
    ("xml", ["<a>x</a>"]),
    ("bytea", [b"", b"\x00\xff" * 10, bytearray(b"ab"), memoryview(b"cd")]),
    ("date", [dt.date(2024, 2, 29), dt.date.max, dt.date.min, dt.datetime(2020, 1, 1, 5)]),
    ("time", [dt.time(13, 14, 15, 123456), dt.time(0, 0)]),
    ("timetz", [dt.time(1, 2, 3, tzinfo=IST), dt.time(23, 59, tzinfo=UTC)]),
    ("timestamp", [dt.datetime(2024, 2, 29, 13, 14, 15, 123456), dt.datetime.max,
                   dt.datetime.min, dt.date(2020, 1, 1)]),
    ("timestamptz", [dt.datetime(2024, 6, 1, 12, tzinfo=IST), dt.datetime(2000, 1, 1, tzinfo=UTC),
                     dt.datetime(2020, 1, 1)]),
    ("interval", [dt.timedelta(days=1, seconds=7384, microseconds=5),
                  dt.timedelta(days=-1, seconds=5), dt.timedelta(0)]),
    ("uuid", [uuid.UUID(U1), U1]),
    ("json", ['{"a": [1, 2.5, null]}', "[]", '"s"']),
    ("jsonb", ['{"b": 1, "a": {}}', "3", ' { "s" :  "é" } ']),
    ("jsonb[]", [['{"a": 1}', None, "[]"]]),
    ("json[]", [[' {"a":  1} ']]),
    ("inet", [ipaddress.ip_address("1.2.3.4"), ipaddress.ip_interface("10.1.2.3/8"),
              ipaddress.ip_address("::1"), "192.168.0.1/24", "10.0.0.1"]),
    ("cidr", [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"),
              "10.1.0.0/16"]),
    ("macaddr", ["08:00:2b:01:02:03"]),
    ("macaddr8", ["08:00:2b:01:02:03:04:05"]),
    ("bit(3)", [BitString("101")]),
    ("varbit", [BitString("10110"), BitString(""), b"\xa0"]),
    ("point", [Point(1, 2.5), (1, 2)]),
    ("lseg", [((1, 2), (3, 4))]),
    ("box", [((3, 4), (1, 2))]),
    ("line", [(1, 2, 3)]),
    ("path", [Path((1, 2), (3, 4), is_closed=True), Path((1, 2), (3, 4)), [(0, 0), (1, 1)]]),
    ("polygon", [Polygon((1, 2), (3, 4), (5, 6))]),
    ("circle", [((1, 2), 3)]),
    ("tid", [(1, 2)]),
    ("xid", [5]),
    ("cid", [3]),
    ("xid8", [7]),
    ("txid_snapshot", [(10, 20, [15]), (5, 5, [])]),
    ("pg_snapshot", [(10, 20, [15, 17])]),
    ("pg_lsn", [97500059720]),
    ("money", ["$1.50", "-3"]),
    ("int4range", [Range(1, 5), Range(empty=True), Range(None, 5), Range(1, 5, upper_inc=True),
                   (2, 9)]),
    ("int8range", [Range(1, 2**40)]),
    ("numrange", [Range(Decimal("1.5"), None, lower_inc=False)]),
    ("daterange", [Range(dt.date(2020, 1, 1), dt.date(2021, 1, 1))]),
    ("tsrange", [Range(dt.datetime(2020, 1, 1), None)]),
    ("tstzrange", [Range(dt.datetime(2020, 1, 1, tzinfo=UTC), dt.datetime(2020, 2, 1, tzinfo=IST))]),
    ("int4multirange", [[Range(1, 3), Range(5, 7)], []]),
    ("datemultirange", [[Range(dt.date(2020, 1, 1), dt.date(2020, 2, 1))]]),
    ("int4[]", [[1, None, 3], [[1, 2], [3, 4]], []]),
    ("text[]", [["a", None, 'q"{},\\', ""]]),
    ("inet[]", [[ipaddress.ip_address("1.2.3.4"), None]]),
    ("timetz[]", [[dt.time(12, 0, tzinfo=IST)]]),
    ("uuid[]", [[uuid.UUID(U1)]]),
    ("numeric[]", [[Decimal("1.5"), None]]),
    ("point[]", [[Point(1, 2), (3, 4)]]),
    ("int4range[]", [[Range(1, 2), Range(empty=True)]]),
    ("bool[]", [[True, False]]),
    ("bytea[]", [[b"\x00", b""]]),
    ("date[]", [[dt.date(2024, 1, 1)]]),
]
TYPES = [t for t, _ in VALUES]

# Python values of many kinds, each sent for every type.
CANDIDATES: list[tuple[str, Any]] = [
    ("str", "x"),
    ("str-int", "12"),
    ("bytes", b"x"),
    ("int", 1),
    ("float-frac", 1.5),
    ("bool", True),
    ("decimal", Decimal("2.5")),
    ("list", [1]),
    ("dict", {"a": 1}),
    ("date", dt.date(2020, 1, 1)),
    ("datetime-aware", dt.datetime(2020, 1, 1, tzinfo=UTC)),
    ("time", dt.time(1, 2)),
    ("timedelta", dt.timedelta(seconds=1)),
    ("uuid", uuid.UUID(U1)),
    ("object", object()),
]

# (type, candidate): accepted by asyncpg, refused or read differently by
# iokernel on purpose.
DELIBERATE = {
    # a fraction for an integer type: asyncpg truncates (1.5 -> 1, 2.5 -> 2)
    **{(t, c): "refused" for t in ("int2", "int4", "int8", "oid", "xid", "cid", "xid8",
                                    "pg_lsn")
       for c in ("float-frac", "decimal")},
    # a bool for an address: asyncpg stores True as 0.0.0.1
    ("inet", "bool"): "refused", ("cidr", "bool"): "refused",
}
# iokernel also accepts: any JSON-able value for json/jsonb and their
# arrays' elements (asyncpg: str only), str for "char" (asyncpg: bytes only).
EXTRA_ACCEPTED = {(t, c) for c, _ in CANDIDATES for t in ("json", "jsonb", "json[]", "jsonb[]")} \
    | {('"char"', "str"), ('"char"', "str-int")}


def like(got: Any, want: Any, typ: str) -> bool:
    """``same``, with iokernel's deliberate "char" as str (asyncpg: bytes)."""
    if typ == '"char"':
        return [x.encode() for x in got] == want if isinstance(got, list) \
            else got.encode() == want
    return same(got, want)


def to_asyncpg(v: Any) -> Any:
    """The same value as asyncpg's own classes, where it has its own."""
    if isinstance(v, Range):
        return asyncpg.Range(v.lower, v.upper, lower_inc=v.lower_inc, upper_inc=v.upper_inc,
                             empty=v.isempty)
    if isinstance(v, BitString):
        return asyncpg.BitString(v.as_string())
    if isinstance(v, Polygon):
        return asyncpg.Polygon(*v.points)
    if isinstance(v, Path):
        return asyncpg.Path(*v.points, is_closed=v.is_closed)
    if isinstance(v, list):
        return [to_asyncpg(x) for x in v]
    return v


def table_of(typ: str) -> str:
    return "ty_" + "".join(c if c.isalnum() else "_" for c in typ)


# -------------------------------------------------------------- reference
async def _reference(dsn: str) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    out: dict[str, Any] = {}
    try:
        for typ, values in VALUES:
            t = table_of(typ) + "_ref"
            await conn.execute(f"DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (k int, v {typ})")
            for k, v in enumerate(values):
                out[f"p:{typ}:{k}"] = await conn.fetchval(f"SELECT $1::{typ}", to_asyncpg(v))
                await conn.execute(f"INSERT INTO {t} VALUES ($1, $2)", k, to_asyncpg(v))
            out[f"t:{typ}"] = await conn.fetch(f"SELECT v::text FROM {t} ORDER BY k")
            out[f"t:{typ}"] = [r[0] for r in out[f"t:{typ}"]]
            out[f"r:{typ}"] = [r[0] for r in await conn.fetch(f"SELECT v FROM {t} ORDER BY k")]
            await conn.execute(f"TRUNCATE {t}")
            try:
                await conn.copy_records_to_table(
                    t, records=[(k, to_asyncpg(v)) for k, v in enumerate(values)])
                out[f"copy:{typ}"] = [r[0] for r in await conn.fetch(
                    f"SELECT v::text FROM {t} ORDER BY k")]
            except Exception as e:  # asyncpg's COPY refuses the type
                out[f"copy:{typ}"] = repr(e)
            for name, cand in CANDIDATES:
                try:
                    got = await conn.fetchval(f"SELECT $1::int4, $2::{typ}::text", 0, cand,
                                              column=1)
                    out[f"c:{typ}:{name}"] = ("ok", got)
                except asyncpg.PostgresError as e:
                    if type(e) is asyncpg.DataError:  # refused before sending
                        out[f"c:{typ}:{name}"] = ("refused", str(e))
                    else:
                        out[f"c:{typ}:{name}"] = ("server", e.sqlstate)
                except Exception as e:
                    out[f"c:{typ}:{name}"] = ("refused", repr(e))
        return out
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def reference(pg_server: PostgresServer) -> dict[str, Any]:
    with ThreadPoolExecutor(1) as ex:
        return ex.submit(asyncio.run, _reference(pg_server.dsn())).result(300)


@pytest.fixture(params=["sync", "async"])
async def call(request: pytest.FixtureRequest, pg_server: PostgresServer) -> Any:
    is_async = request.param == "async"
    cls = pg.AsyncClient if is_async else pg.Client
    client = cls(pg_server.dsn(application_name=f"iok-types-{request.param}"), timeout=30.0)

    async def _call(method: str, *args: Any, **kw: Any) -> Any:
        result = getattr(client, method)(*args, **kw)
        return await result if is_async else result

    yield _call
    closed = client.close()
    if is_async:
        await closed


def _values() -> list[Any]:
    return [pytest.param(typ, values, id=typ) for typ, values in VALUES]


# ----------------------------------------------------------------- tests
@pytest.mark.parametrize(("typ", "values"), _values())
async def test_parameters_match_asyncpg(reference: dict[str, Any], call: Any, typ: str,
                                        values: list[Any]) -> None:
    for k, v in enumerate(values):
        got = await call("fetchval", f"SELECT $1::{typ}", v)
        want = reference[f"p:{typ}:{k}"]
        assert like(got, want, typ), f"{typ} {v!r}: iokernel {got!r} != asyncpg {want!r}"


@pytest.mark.parametrize(("typ", "values"), _values())
async def test_stored_and_read_back_like_asyncpg(
    reference: dict[str, Any], call: Any, pg_server: PostgresServer, typ: str, values: list[Any]
) -> None:
    """Through a table, by execute and by executemany: the same stored text
    and the same values read back; the stored text as a literal too."""
    t = f"{table_of(typ)}_{uuid.uuid4().hex[:8]}"
    await call("execute", f"CREATE TABLE {t} (k int, v {typ})")
    try:
        for k, v in enumerate(values):
            await call("execute", f"INSERT INTO {t} VALUES ($1, $2)", k, v)
        await call("executemany", f"INSERT INTO {t} VALUES ($1, $2)",
                   [(100 + k, v) for k, v in enumerate(values)])
        texts = [r[0] for r in await call("fetch", f"SELECT v::text FROM {t} ORDER BY k")]
        want = reference[f"t:{typ}"]
        assert texts == want + want, f"{typ}: stored {texts} != asyncpg's {want}"
        rows = [r[0] for r in await call("fetch", f"SELECT v FROM {t} WHERE k < 100 ORDER BY k")]
        assert like(rows, reference[f"r:{typ}"], typ), f"{typ}: read {rows!r}"
        for text, value in zip(want, reference[f"r:{typ}"], strict=True):
            if text is None:
                continue
            lit = text.replace("'", "''")
            got = await call("fetchval", f"SELECT '{lit}'::{typ}")
            assert like(got, value, typ), f"{typ} literal {text!r}: {got!r} != {value!r}"
    finally:
        await call("execute", f"DROP TABLE {t}")


# Rows of the streamed executemany: past its first 8 KiB and a 64 KiB chunk
# (src/python/pg/many.rs) even at 40 bytes a row.
BIG_BATCH = 3000
# Types whose values a table that needs the text COPY format (it has a
# text-only column: money here) refuses, naming the column (asyncpg refuses
# such a table altogether: "no binary format encoder for type money");
# the scalar types are written there as text (src/python/pg/copy_text.rs).
TEXT_COPY_REFUSED = {t for t in TYPES if t.endswith("[]") or "range" in t} | {
    "inet", "cidr", "bit(3)", "varbit", "point", "lseg", "box", "line", "path", "polygon",
    "circle", "tid", "txid_snapshot", "pg_snapshot"}


@pytest.mark.parametrize(("typ", "values"), _values())
async def test_copy_and_streamed_executemany_store_like_asyncpg(
    reference: dict[str, Any], call: Any, typ: str, values: list[Any]
) -> None:
    """COPY in the binary format (text for a text-only type), COPY in the
    text format (a ``money`` column in the table forces it; or refused,
    ``TEXT_COPY_REFUSED``), and an executemany of ``BIG_BATCH`` rows: each
    stores what asyncpg stores (asyncpg's own COPY stores the same too,
    where it takes the type)."""
    want = reference[f"t:{typ}"]
    if isinstance(reference[f"copy:{typ}"], list):
        assert reference[f"copy:{typ}"] == want, "asyncpg's COPY and INSERT differ"
    t = f"{table_of(typ)}_{uuid.uuid4().hex[:8]}"
    await call("execute", f"CREATE TABLE {t} (k int, v {typ}, pad money)")
    try:
        n = len(values)
        st = await call("copy_records_to_table", t, columns=["k", "v"],
                        records=[(k, v) for k, v in enumerate(values)])
        assert st == f"COPY {n}"
        text_recs = [(100 + k, v, None) for k, v in enumerate(values)]
        if typ in TEXT_COPY_REFUSED:
            with pytest.raises(TypeError, match=r"record 0 .*column 1 .*cannot be copied in "
                                                r"the text COPY format"):
                await call("copy_records_to_table", t, columns=["k", "v", "pad"],
                           records=text_recs)
            text_recs = [(100 + k, None, None) for k in range(n)]
        st = await call("copy_records_to_table", t, columns=["k", "v", "pad"], records=text_recs)
        assert st == f"COPY {n}"
        await call("executemany", f"INSERT INTO {t} (k, v) VALUES ($1, $2)",
                   [(1000 + k, values[k % n]) for k in range(BIG_BATCH)])
        got = {r[0]: r[1] for r in await call("fetch", f"SELECT k, v::text FROM {t}")}
        legs = {"binary COPY": [got[k] for k in range(n)],
                "text COPY": [got[100 + k] for k in range(n) if typ not in TEXT_COPY_REFUSED],
                "streamed executemany": [got[1000 + k] for k in range(BIG_BATCH)]}
        wrong = {leg: texts for leg, texts in legs.items()
                 if texts != [want[k % n] for k in range(len(texts))]}
        assert not wrong, f"{typ}: asyncpg stored {want}, iokernel {wrong}"
        rows = [r[0] for r in await call("fetch", f"SELECT v FROM {t} WHERE k < 100 ORDER BY k")]
        assert like(rows, reference[f"r:{typ}"], typ), f"{typ}: read {rows!r}"
    finally:
        await call("execute", f"DROP TABLE {t}")


@pytest.mark.parametrize("typ", TYPES)
async def test_mismatched_values_are_refused_like_asyncpg(reference: dict[str, Any], call: Any,
                                                          typ: str) -> None:
    """Each candidate as ``$2``: refused before sending (DataError naming $2 and the
    type) exactly where asyncpg refuses it; accepted and stored the same elsewhere,
    except the deliberate differences."""
    wrong: list[str] = []
    for name, cand in CANDIDATES:
        kind, want = reference[f"c:{typ}:{name}"]
        try:
            got = await call("fetchval", f"SELECT $1::int4, $2::{typ}::text", 0, cand, column=1)
            outcome: tuple[str, Any] = ("ok", got)
        except pg.DataError as e:
            outcome = ("refused", str(e))
            assert "argument $2 " in str(e), str(e)
            assert e.sqlstate == "22000" and e.stage == "not_sent"
        except pg.PostgresError as e:
            outcome = ("server", e.sqlstate)
        if DELIBERATE.get((typ, name)) == outcome[0] and kind == "ok":
            continue
        if (typ, name) in EXTRA_ACCEPTED and kind != "ok" and outcome[0] != "refused":
            continue
        if outcome[0] != kind or (kind == "ok" and outcome[1] != want):
            wrong.append(f"{name} {cand!r}: iokernel {outcome} != asyncpg {(kind, want)}")
    assert not wrong, f"{typ}:\n" + "\n".join(wrong)


async def test_the_refusal_names_position_type_and_value(call: Any) -> None:
    with pytest.raises(pg.DataError) as ei:
        await call("fetchval", "SELECT $1::int, $2::text, $3::int", 1, "a", "3")
    msg = str(ei.value)
    assert msg.startswith("invalid input for query argument $3 (int4): '3' "), msg
    assert "'str' object cannot be interpreted as an integer" in msg
    with pytest.raises(pg.InterfaceError, match="expects 2 arguments for this query, 1 was"):
        await call("fetchval", "SELECT $1::int, $2::int", 1)
    with pytest.raises(TypeError):  # InterfaceError is a TypeError too
        await call("fetchval", "SELECT 1", 1)
    assert await call("fetchval", "SELECT $1::int + 1", 1) == 2


# ------------------------------------------- the silent corruptions of issue 11
async def test_values_are_never_stored_as_something_else(call: Any) -> None:
    t = f"corrupt_{uuid.uuid4().hex[:8]}"
    await call("execute", f'CREATE TABLE {t} (c "char", s text, b bytea, ts timestamp, i int)')
    try:
        await call("execute", f"INSERT INTO {t} (c) VALUES ($1)", b"a")
        assert await call("fetchval", f"SELECT c::text FROM {t}") == "a"  # was '\\'
        for v in (b"foo", [1]):  # were stored as '\\x666f6f' and '{"1"}'
            with pytest.raises(pg.DataError, match=r"\$1 \(text\)"):
                await call("execute", f"INSERT INTO {t} (s) VALUES ($1)", v)
        with pytest.raises(pg.DataError, match=r"\$1 \(bytea\)"):  # '\\x41' was b'A'
            await call("execute", f"INSERT INTO {t} (b) VALUES ($1)", "\\x41")
        with pytest.raises(pg.DataError, match=r"\$1 \(timestamp\).*timezone-aware"):
            await call("execute", f"INSERT INTO {t} (ts) VALUES ($1)",
                       dt.datetime(2020, 1, 1, tzinfo=IST))  # lost its offset
        await call("execute", f"INSERT INTO {t} (i) VALUES ($1)", True)  # was 22P02
        assert await call("fetchval", f"SELECT i FROM {t} WHERE i IS NOT NULL") == 1
        assert await call("fetchval", f"SELECT count(*) FROM {t}") == 2
    finally:
        await call("execute", f"DROP TABLE {t}")


async def test_no_session_setting_is_forced(reference: dict[str, Any], call: Any,
                                            pg_server: PostgresServer) -> None:
    """Text the user's SQL formats is the server's default format."""
    assert await call("fetchval", "SELECT '1 day 2 hours'::interval::text") == "1 day 02:00:00"
    got = await call("fetchval", "SELECT json_build_object('i', '1 day'::interval)")
    assert got == '{"i" : "1 day"}'
    for name in ("DateStyle", "IntervalStyle", "extra_float_digits", "TimeZone"):
        assert await call("fetchval", f"SHOW {name}") == pg_server.sql(f"SHOW {name}")


async def test_void_arrays_of_anything_and_database_types(call: Any) -> None:
    tag = uuid.uuid4().hex[:8]
    mood, dom, comp = f"mood_{tag}", f"posint_{tag}", f"pair_{tag}"
    await call("execute", f"CREATE TYPE {mood} AS ENUM ('sad', 'happy'); "
                          f"CREATE DOMAIN {dom} AS int CHECK (VALUE > 0); "
                          f"CREATE TYPE {comp} AS (a int, m {mood}, tags text[]); "
                          "CREATE EXTENSION IF NOT EXISTS citext")
    try:
        assert await call("fetchval", "SELECT pg_sleep(0)") is None
        row = await call(
            "fetchrow",
            f"SELECT 'happy'::{mood} AS m, ARRAY['sad', 'happy']::{mood}[] AS ms, "
            f"ARRAY[1, 2]::{dom}[] AS ds, ARRAY['abc']::citext[] AS cs, "
            f"ARRAY['1.2.3.4'::inet] AS ns, ARRAY['12:00+03'::timetz] AS ts, "
            f"ROW(1, 'sad', ARRAY['x'])::{comp} AS c, ROW(1, 'a') AS r",
        )
        assert row["m"] == "happy" and row["ms"] == ["sad", "happy"]
        assert row["ds"] == [1, 2] and row["cs"] == ["abc"] and row["cs"][0] == "abc"
        assert row["ns"] == [ipaddress.ip_address("1.2.3.4")]
        assert row["ts"][0].utcoffset() == dt.timedelta(hours=3)
        assert tuple(row["c"]) == (1, "sad", ["x"]) and row["c"]["m"] == "sad"
        assert row["r"] == (1, "a")
        got = await call("fetchval", f"SELECT $1::{comp}", (2, "happy", ["y", None]))
        assert tuple(got) == (2, "happy", ["y", None])
        got = await call("fetchval", f"SELECT $1::{comp}", {"a": 3, "m": "sad", "tags": []})
        assert tuple(got) == (3, "sad", [])
        assert await call("fetchval", f"SELECT $1::{mood}[]", ["happy"]) == ["happy"]
        assert await call("fetchval", f"SELECT $1::{dom}", 5) == 5
        with pytest.raises(pg.DataError, match=rf"\$1 \(public.{dom}\)"):
            await call("fetchval", f"SELECT $1::{dom}", "5")
        with pytest.raises(pg.PostgresError) as ei:  # the domain's CHECK: the server's word
            await call("fetchval", f"SELECT $1::{dom}", -5)
        assert ei.value.sqlstate == "23514"
        assert await call("fetchval", "SELECT $1::citext[]", ["AbC"]) == ["AbC"]
    finally:
        await call("execute", f"DROP TYPE {comp}; DROP TYPE {mood}; DROP DOMAIN {dom}")


async def test_set_type_codec(pg_server: PostgresServer) -> None:
    """Text and binary codecs, for a database type and a built-in one; applied
    to parameters, results and array elements."""
    tag = uuid.uuid4().hex[:8]
    pg_server.sql(f"CREATE TYPE cx_{tag} AS (re float8, im float8)")
    db = pg.Client(pg_server.dsn(application_name=f"iok-codec-{tag}"), timeout=30.0)
    try:
        db.set_type_codec(f"cx_{tag}", schema="public", format="text",
                          encoder=lambda z: f"({z.real},{z.imag})",
                          decoder=lambda s: complex(*map(float, s.strip("()").split(","))))
        assert db.fetchval(f"SELECT $1::cx_{tag}", 1 + 2j) == 1 + 2j
        assert db.fetchval(f"SELECT ARRAY[$1::cx_{tag}]", 3j) == [3j]
        db.set_type_codec("int8", schema="pg_catalog", format="binary",
                          encoder=lambda v: int(v).to_bytes(8, "big", signed=True),
                          decoder=lambda b: ("int8", int.from_bytes(b, "big", signed=True)))
        assert db.fetchval("SELECT $1::int8 + 1", "41") == ("int8", 42)
        # a text codec on a built-in type also decodes its arrays' elements
        db.set_type_codec("numeric", schema="pg_catalog", format="text",
                          encoder=str, decoder=lambda s: ("numeric", s))
        assert db.fetchval("SELECT ARRAY[1.50, NULL]::numeric[]") == [("numeric", "1.50"), None]
        # json/jsonb: a decoder other than json.loads gets the text
        db.set_type_codec("jsonb", schema="pg_catalog", encoder=lambda v: v,
                          decoder=lambda s: ("jsonb", s))
        assert db.fetchval("""SELECT '{"a":1}'::jsonb, ARRAY['[]'::jsonb]""") == (
            "jsonb", '{"a": 1}')
        assert db.fetchval("SELECT ARRAY['[]'::jsonb]") == [("jsonb", "[]")]
        with pytest.raises(ValueError, match="unknown type"):
            db.set_type_codec("no_such_type", encoder=str, decoder=str)
    finally:
        db.close()
        pg_server.sql(f"DROP TYPE cx_{tag}")


async def test_async_set_type_codec(pg_server: PostgresServer) -> None:
    db = pg.AsyncClient(pg_server.dsn(application_name="iok-codec-async"), timeout=30.0)
    try:
        await db.set_type_codec("macaddr", schema="pg_catalog", format="text",
                                encoder=lambda v: v.hex(":"),
                                decoder=lambda s: bytes.fromhex(s.replace(":", "")))
        got = await db.fetchval("SELECT $1::macaddr::text::macaddr", b"\x08\x00\x2b\x01\x02\x03")
        assert got == bytes.fromhex("08:00:2b:01:02:03".replace(":", ""))
    finally:
        await db.close()
