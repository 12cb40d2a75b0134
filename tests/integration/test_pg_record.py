"""``iokernel.pg.Record`` against a real PostgreSQL (tests/servers): tuple and
mapping access as asyncpg's Record, comparison, hash and repr, its size (one
object with the values inline), and its memory safety: cycles through a
Record are collected, nothing leaks over many calls, a row that fails to
decode half-way frees what it had. test_pg_queries has the basic use."""

from __future__ import annotations

import gc
import pickle
import sys
import tracemalloc
import uuid
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from iokernel import pg
from tests.servers import PostgresServer

SIX = "SELECT 1 AS a, 'x' AS b, NULL::int AS c, 2.5::float8 AS d, true AS e, 7 AS f"


@pytest.fixture(scope="module")
def db(pg_server: PostgresServer) -> Iterator[Any]:
    client = pg.Client(pg_server.dsn(application_name="iok-record"), timeout=30.0)
    yield client
    client.close()


def test_sequence_access(db: Any) -> None:
    r = db.fetchrow(SIX)
    vals = (1, "x", None, 2.5, True, 7)
    assert isinstance(r, pg.Record) and len(r) == 6
    assert [r[i] for i in range(6)] == list(vals)
    assert [r[-i] for i in range(1, 7)] == list(reversed(vals))
    for bad in (6, -7, 10**6, -(10**6)):
        with pytest.raises(IndexError, match="Record index out of range"):
            r[bad]
    for sl in (slice(1, 3), slice(None, None, -1), slice(-2, None), slice(1, 100),
               slice(4, 1), slice(None, None, 2), slice(5, 0, -2)):
        got = r[sl]
        assert type(got) is tuple and got == vals[sl], sl
    for bad_key in (1.0, None, b"a", 10**30):
        with pytest.raises(TypeError, match="integers, slices or column names"):
            r[bad_key]
    assert r[True] == "x"  # an int, as for a tuple
    assert list(r) == list(vals) and tuple(r) == vals
    assert list(reversed(r)) == list(reversed(vals))
    it = iter(r)
    assert next(it) == 1 and list(it) == list(vals[1:])
    empty = db.fetchrow("SELECT")
    assert len(empty) == 0 and tuple(empty) == () and empty[:] == ()


def test_mapping_access(db: Any) -> None:
    r = db.fetchrow(SIX)
    assert [r[k] for k in "abcdef"] == [1, "x", None, 2.5, True, 7]
    with pytest.raises(KeyError) as ei:
        r["nope"]
    assert ei.value.args == ("nope",)
    assert r.get("b") == "x" and r.get("c", 5) is None  # a NULL is a value
    assert r.get("nope") is None and r.get("nope", 5) == 5
    assert r.get(key="a") == 1 and r.get("nope", default=[]) == []
    assert r.get(0) is None  # only names are keys
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'key'"):
        r.get()
    with pytest.raises(TypeError, match="at most 2 arguments"):
        r.get("a", 1, 2)
    with pytest.raises(TypeError, match="multiple values for argument 'key'"):
        r.get("a", key="b")
    with pytest.raises(TypeError, match="unexpected keyword argument 'x'"):
        r.get("a", x=1)
    keys, values, items = r.keys(), r.values(), r.items()
    assert next(keys) == "a" and next(values) == 1 and next(items) == ("a", 1)
    assert list(r.keys()) == list("abcdef")
    assert list(r.values()) == [1, "x", None, 2.5, True, 7]
    assert dict(r.items()) == {"a": 1, "b": "x", "c": None, "d": 2.5, "e": True, "f": 7}
    assert "a" in r and "f" in r and "nope" not in r
    assert 1 not in r and "x" not in r  # `in` looks at names, as asyncpg's
    with pytest.raises(TypeError, match="unhashable"):
        [1] in r  # noqa: B015
    dup = db.fetchrow("SELECT 1 AS a, 2 AS a, 3 AS b")
    assert dup["a"] == 1 and dup.get("a") == 1 and list(dup.keys()) == ["a", "a", "b"]
    assert list(dup.items()) == [("a", 1), ("a", 2), ("b", 3)]


def test_compare_hash_repr(db: Any) -> None:
    rows = db.fetch("SELECT g AS n, 'v' || (3 - g) AS s FROM generate_series(0, 2) g")
    # tuple first too: the tuple gives up and the Record's reflected method answers
    assert rows[1] == (1, "v2") and (1, "v2") == rows[1] and rows[1] != [1, "v2"]  # noqa: SIM300
    assert rows[0] != rows[1] and rows[1] == db.fetchrow("SELECT 1, 'v2'")
    assert rows[0] < rows[1] <= (1, "v2") < rows[2] and (2, "a") < rows[2]  # noqa: SIM300
    assert sorted(rows, key=lambda r: r["s"]) == [rows[2], rows[1], rows[0]]
    assert hash(rows[1]) == hash((1, "v2"))
    assert len({rows[1], (1, "v2"), rows[0]}) == 2
    with pytest.raises(TypeError, match="unhashable"):
        hash(db.fetchrow("SELECT ARRAY[1] AS l"))
    assert repr(db.fetchrow(SIX)) == "<Record a=1 b='x' c=None d=2.5 e=True f=7>"
    assert repr(db.fetchrow("SELECT 'it''s' AS \"odd name\"")) == "<Record odd name=\"it's\">"


def test_type_is_closed(db: Any) -> None:
    """As before: no Python constructor, no subclass, no pickling."""
    r = db.fetchrow(SIX)
    assert type(r) is pg.Record and pg.Record.__module__ == "iokernel.pg"
    with pytest.raises(TypeError, match="cannot create"):
        pg.Record()
    with pytest.raises(TypeError):
        type("Sub", (pg.Record,), {})
    with pytest.raises(TypeError, match="cannot pickle"):
        pickle.dumps(r)


def test_one_object_with_values_inline(db: Any) -> None:
    """A Record is a single variable-size object: 8 bytes per value over a
    fixed part, at most asyncpg's 104 bytes for six columns (the former
    object + separate tuple: 56 + 88 = 144). tracemalloc over 20,000 rows
    counts what the result really costs: Records + the list (6 small ints,
    cached by CPython, add nothing): ~104 bytes a row (was ~150)."""
    one, six = db.fetchrow("SELECT 1"), db.fetchrow(SIX)
    assert sys.getsizeof(six) - sys.getsizeof(one) == 5 * 8
    assert sys.getsizeof(six) <= 96
    sql = "SELECT 1, 2, 3, 4, 5, 6 FROM generate_series(1, 20000)"
    db.fetch(sql)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rows = db.fetch(sql)
        per_row = (tracemalloc.get_traced_memory()[0] - before) / len(rows)
    finally:
        tracemalloc.stop()
    assert len(rows) == 20000 and rows[-1] == (1, 2, 3, 4, 5, 6)
    assert per_row < 112, per_row


def test_cycle_through_a_record_is_collected(db: Any) -> None:
    """record → array list → record (an int[] and a text[]): the
    collector sees a Record's values, so the cycles go (a finalizer on an
    object inside each proves it). A Record of plain values is left
    untracked (it can be in no cycle), like such a tuple."""
    gone: list[str] = []

    class Probe:
        pass

    for col in ("ARRAY['k']", "ARRAY[1, 2]"):
        r = db.fetchrow(f"SELECT 1 AS a, {col} AS m")
        assert gc.is_tracked(r)
        inner = r["m"]
        probe = Probe()
        weakref.finalize(probe, gone.append, col)
        if isinstance(inner, dict):
            inner["self"], inner["probe"] = r, probe
        else:
            inner += [r, probe]
        del r, inner, probe
        assert gone == [] or gone[-1] != col
        gc.collect()
        assert gone[-1] == col
    assert not gc.is_tracked(db.fetchrow(SIX))


def test_no_reference_leaks(db: Any) -> None:
    """Every way in and out of a Record over many calls leaves the reference
    counts of the values, the default and the record as they were."""
    r = db.fetchrow("SELECT 1 AS a, ARRAY[1] AS j, 'x' AS s")
    j, default = r["j"], object()
    counts = sys.getrefcount(j), sys.getrefcount(default), sys.getrefcount(r)
    for _ in range(2000):
        r["j"], r[1], r[-2], r[1:], r[::-1], r.get("j"), r.get("no", default)
        r.get(key="no", default=default), list(r), tuple(r), list(r.values())
        list(r.items()), list(r.keys()), repr(r), "j" in r, r == (1, j, "x"), r < r
        with pytest.raises(TypeError):
            hash(r)
        with pytest.raises(KeyError):
            r["no"]
        with pytest.raises(IndexError):
            r[5]
    assert (sys.getrefcount(j), sys.getrefcount(default), sys.getrefcount(r)) == counts


def test_no_memory_growth_over_many_results(db: Any) -> None:
    sql = ("SELECT g AS n, 'row ' || g AS s, jsonb_build_object('g', g) AS j, "
           "ROW(g, 'x') AS r FROM generate_series(1, 100) g")
    for _ in range(50):
        db.fetch(sql)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(400):
            rows = db.fetch(sql)
            assert rows[-1]["j"] == '{"g": 100}' and rows[0]["r"] == (1, "x")
        del rows
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # A leaked Record per row would be 40,000 objects (> 4 MB).
    assert grown < 256 * 1024, grown


def test_row_failing_half_way_frees_what_it_had(pg_server: PostgresServer) -> None:
    """A decoder raising on the 2nd column of the 2nd row: the error reaches
    the caller and every value decoded before it (in that row and the row
    before) is freed, by reference counting alone."""
    tag = uuid.uuid4().hex[:8]
    db = pg.Client(pg_server.dsn(application_name=f"iok-record-{tag}"), timeout=30.0)
    alive: weakref.WeakSet[Any] = weakref.WeakSet()

    class Probe:
        pass

    def probe(_: bytes) -> Probe:
        p = Probe()
        alive.add(p)
        return p

    def fail(b: bytes) -> int:
        n = int.from_bytes(b, "big", signed=True)
        if n == 2:
            raise ValueError("no twos")
        return n

    try:
        db.set_type_codec("int4", schema="pg_catalog", format="binary",
                          encoder=lambda v: int(v).to_bytes(4, "big"), decoder=probe)
        db.set_type_codec("int8", schema="pg_catalog", format="binary",
                          encoder=lambda v: int(v).to_bytes(8, "big"), decoder=fail)
        gc.disable()  # reference counting alone must free them
        try:
            with pytest.raises(ValueError, match="no twos"):
                db.fetch("SELECT g::int4 AS p, g::int8 AS n, 'x' AS s "
                         "FROM generate_series(1, 3) g")
            assert len(alive) == 0
            row = db.fetchrow("SELECT 7::int4 AS p, 1::int8 AS n")
            assert isinstance(row["p"], Probe) and row["n"] == 1 and len(alive) == 1
            del row
            assert len(alive) == 0
        finally:
            gc.enable()
    finally:
        db.close()
