"""``iokernel.pg.UUID``, what uuid results decode to, against a real
PostgreSQL (tests/servers): a ``uuid.UUID`` subclass holding its 16 bytes
inline, which must behave as the standard class does (equality and hashing
mixed with standard UUIDs, ordering, str/repr/int/bytes/hex/fields, pickle,
copy, immutability, weak references), go back as a parameter in every path,
and be smaller than a standard UUID with its separate 128-bit int."""

from __future__ import annotations

import copy
import gc
import operator
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

# Edge values: zero, all ones, ints around the hash modulus 2**61 - 1 (a
# native hash must agree with hash(int)), versions 1 and 4, and one above
# 2**127 (the top bit set).
M61 = 2**61 - 1
VALUES = [
    uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.UUID(int=1),
    uuid.UUID(int=M61), uuid.UUID(int=M61 - 1), uuid.UUID(int=M61 * 3),
    uuid.UUID(int=M61 * 2**60 + 5), uuid.UUID(int=2**127 + 12345),
    uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
    uuid.UUID("c232ab00-9414-11ec-b3c8-9f6bdeced846"),  # version 1
    uuid.UUID("00000000-0000-4000-8000-000000000000"),
]
ATTRS = ("int", "bytes", "bytes_le", "hex", "urn", "version", "variant", "fields",
         "time_low", "time_mid", "time_hi_version", "clock_seq_hi_variant",
         "clock_seq_low", "node", "time", "clock_seq", "is_safe")


@pytest.fixture(scope="module")
def db(pg_server: PostgresServer) -> Iterator[Any]:
    client = pg.Client(pg_server.dsn(application_name="iok-uuid"), timeout=30.0)
    yield client
    client.close()


@pytest.fixture(scope="module")
def fetched(db: Any) -> list[uuid.UUID]:
    rows = db.fetch("SELECT unnest($1::text[])::uuid", [str(v) for v in VALUES])
    got = [r[0] for r in rows]
    assert len(got) == len(VALUES)
    return got


def test_decoded_values_are_inline_subclass(fetched: list[uuid.UUID]) -> None:
    for u, std in zip(fetched, VALUES):
        assert type(u) is pg.UUID and isinstance(u, uuid.UUID)
        assert type(u).__name__ == "UUID"
        assert not gc.is_tracked(u)
        for a in ATTRS:
            assert getattr(u, a) == getattr(std, a), (std, a)
        assert int(u) == std.int
        assert str(u) == str(std) and repr(u) == repr(std) == f"UUID('{std}')"
        assert f"{u}" == str(std)


def test_equality_and_hash_mixed_with_standard(fetched: list[uuid.UUID]) -> None:
    for u, std in zip(fetched, VALUES):
        assert u == std and std == u and (u != std) is False and (std != u) is False
        assert hash(u) == hash(std) == hash(std.int)
        assert {std: 1}[u] == 1 and {u: 1}[std] == 1
        assert u in {std} and std in {u}
        assert u != "x" and u != std.int and (u == str(std)) is False
        assert u.__eq__(3) is NotImplemented
    assert len(set(fetched) | set(VALUES)) == len(VALUES)
    others = [f for f in fetched if f != fetched[0]]
    assert all(o != fetched[0] for o in others) and len(others) == len(VALUES) - 1


def test_ordering_as_standard(fetched: list[uuid.UUID]) -> None:
    assert sorted(fetched) == sorted(VALUES)
    assert [str(x) for x in sorted(fetched)] == [str(x) for x in sorted(VALUES)]
    for a, sa in zip(fetched, VALUES):
        for b, sb in zip(fetched, VALUES):
            expect = (sa < sb, sa <= sb, sa > sb, sa >= sb)
            assert (a < b, a <= b, a > b, a >= b) == expect
            assert (a < sb, a <= sb, a > sb, a >= sb) == expect
            assert (sa < b, sa <= b, sa > b, sa >= b) == expect
    with pytest.raises(TypeError):
        _ = fetched[0] < 1  # type: ignore[operator]
    with pytest.raises(TypeError):
        operator.ge("a", fetched[0])  # str's, then the reflected one


def test_immutable_pickle_copy_weakref(fetched: list[uuid.UUID]) -> None:
    u = fetched[8]
    with pytest.raises(TypeError, match="immutable"):
        u.int = 5  # type: ignore[misc]
    with pytest.raises(TypeError, match="immutable"):
        u.foo = 5  # type: ignore[attr-defined]
    for proto in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(u, protocol=proto))
        # a plain uuid.UUID: readable without iokernel
        assert type(back) is uuid.UUID and back == u and back.is_safe == u.is_safe
    assert copy.copy(u) == u and copy.deepcopy(u) == u
    deep = copy.deepcopy({"k": [u]})
    assert deep == {"k": [u]} and isinstance(deep["k"][0], uuid.UUID)
    w = weakref.ref(u)
    assert w() is u
    v = pg.UUID(str(u))
    wv = weakref.ref(v)
    del v
    assert wv() is None  # freed at once (not collected: no cycle possible)


def test_constructor_takes_uuid_arguments() -> None:
    std = VALUES[8]
    for u in (pg.UUID(str(std)), pg.UUID(bytes=std.bytes), pg.UUID(int=std.int),
              pg.UUID(hex=std.hex), pg.UUID("{" + str(std).upper() + "}"),
              pg.UUID(bytes_le=std.bytes_le), pg.UUID(fields=std.fields)):
        assert type(u) is pg.UUID and u == std and hash(u) == hash(std)
    with pytest.raises(ValueError):
        pg.UUID("not a uuid")
    with pytest.raises(TypeError):
        pg.UUID()
    with pytest.raises(TypeError):
        type("Sub", (pg.UUID,), {})


def test_base_slot_set_behind_its_back_is_released() -> None:
    # Only the base's own descriptor can fill the base's `int` slot; the
    # object must still drop that reference when freed.
    u = pg.UUID(int=7)
    marker = object()
    before = sys.getrefcount(marker)
    uuid.UUID.__dict__["int"].__set__(u, marker)
    assert sys.getrefcount(marker) == before + 1
    assert u.int == 7  # the inline value still answers
    del u
    assert sys.getrefcount(marker) == before


def test_parameters_in_every_path(db: Any, fetched: list[uuid.UUID]) -> None:
    u = fetched[8]
    assert db.fetchval("SELECT $1::uuid", u) == u
    for v in (u, VALUES[8]):  # as asyncpg: a text parameter takes str only
        with pytest.raises(pg.DataError, match=r"\$1 \(text\).*expected str, got UUID"):
            db.fetchval("SELECT $1::text", v)
    assert db.fetchval("SELECT $1::uuid[]", fetched) == VALUES
    arr = db.fetchval("SELECT $1::uuid[]", [u, None])
    assert arr == [u, None] and type(arr[0]) is pg.UUID
    assert db.fetchval("SELECT $1 = $2::uuid", u, str(u)) is True
    db.execute("CREATE TEMP TABLE IF NOT EXISTS t_uuid (i int, u uuid)")
    db.execute("TRUNCATE t_uuid")
    db.executemany("INSERT INTO t_uuid VALUES ($1, $2)", list(enumerate(fetched)))
    got = db.fetch("SELECT u FROM t_uuid ORDER BY i")
    assert [r[0] for r in got] == VALUES
    # a big batch goes through executemany's binary path
    many = [(i, fetched[i % len(fetched)]) for i in range(2000)]
    db.execute("TRUNCATE t_uuid")
    db.executemany("INSERT INTO t_uuid VALUES ($1, $2)", many)
    assert db.fetchval("SELECT count(DISTINCT u) FROM t_uuid") == len(VALUES)
    assert db.fetchval("SELECT u FROM t_uuid WHERE i = 1999") == fetched[1999 % len(fetched)]


def test_copy_records_takes_it(db: Any, fetched: list[uuid.UUID]) -> None:
    db.execute("CREATE TABLE IF NOT EXISTS t_uuid_copy (i int, u uuid)")
    db.execute("TRUNCATE t_uuid_copy")
    try:
        db.copy_records_to_table("t_uuid_copy", records=list(enumerate(fetched)))
        got = [r[0] for r in db.fetch("SELECT u FROM t_uuid_copy ORDER BY i")]
        assert got == VALUES
    finally:
        db.execute("DROP TABLE t_uuid_copy")


def test_smaller_than_a_standard_uuid(db: Any) -> None:
    n = 20_000
    sql = "SELECT array_agg(md5(g::text)::uuid) FROM generate_series(1, $1) g"
    tracemalloc.start()
    try:
        ours = db.fetchval(sql, n)
        ours_size = tracemalloc.get_traced_memory()[0]
        std = [uuid.UUID(bytes=u.bytes) for u in ours]
        std_size = tracemalloc.get_traced_memory()[0] - ours_size
    finally:
        tracemalloc.stop()
    # The list (8 B a value) is in both; the value is one object here, an
    # object and its 128-bit int (44 B on 3.11) there.
    assert len(ours) == n and type(ours[0]) is pg.UUID
    assert ours_size / n <= sys.getsizeof(ours[0]) + 8 + 4
    assert std_size - ours_size >= 30 * n
    assert sys.getsizeof(ours[0]) <= sys.getsizeof(std[0])
