"""The native json/jsonb decoder (src/python/pg/json.rs, used when a
client asks for objects with ``set_type_codec(..., decoder=json.loads)``)
and the uuid constructor (values.rs) give exactly what ``json.loads`` and
``uuid.UUID(bytes=...)`` give, through the ``_pg_json_loads`` and
``_pg_decode_cell`` test hooks (uuid is OID 2950). By default json/jsonb
cells are their text, as in asyncpg. No server needed.
"""

from __future__ import annotations

import copy
import json
import pickle
import random
import uuid
from typing import Any

import pytest

from iokernel import _native, pg


def dec(oid: int, text: str | bytes) -> Any:
    if isinstance(text, str):
        text = text.encode()
    return _native._pg_decode_cell(oid, text)


def loads(text: str | bytes) -> Any:
    """The native parser (what ``decoder=json.loads`` runs)."""
    if isinstance(text, str):
        text = text.encode()
    return _native._pg_json_loads(text)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True
    would hide a wrong type)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and a != a:
        return b != b
    return bool(a == b)


CASES = [
    "0", "-0", "1", "-1", "123456789012345678", "-12345678901234567",
    "1234567890123456789", "-1234567890123456789", "99999999999999999999999",
    "0.5", "-0.0", "1e5", "1E+5", "1e-5", "2.5e300", "1e400", "-1e400", "1.7976931348623157e308",
    "5e-324", "0.1", "3.141592653589793238462643383279",
    "true", "false", "null", '""', '"abc"', '"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"',
    '"\\u00e9\\u4e2d\\ud83d\\ude00"', '"é中😀"', '"\\ud800"', '"\\udc00x"', '"\\ud800\\u0041"',
    "[]", "{}", "[1, [2, [3, []]]]", '{"a": 1, "a": 2}', '{"b": 1, "a": {}}',
    ' \t\n\r{ "k" : [ 1 , 2.0 , "x" ] } \n', '{"long key ' + "x" * 40 + '": 1}',
    '{"\\u006b": 1}', '[true,false,null]', '"' + "x" * 1000 + '"',
    "[" * 300 + "]" * 300,
    # what json.loads refuses or reads its own way: same error or value
    "NaN", "Infinity", "-Infinity", "[NaN]",
    "1.", ".5", "01", "-", "1e", "+1", "[1,]", '{"a":1,}', "{", "[", '"abc', "tru",
    '"a\x01b"', "1 2", "", "   ", '{"a" 1}', "{1: 2}", '"\\x41"', '"\\u12"',
]


@pytest.mark.parametrize("text", CASES)
def test_json_matches_json_loads(text: str) -> None:
    try:
        want: Any = json.loads(text)
    except ValueError as e:
        with pytest.raises(ValueError) as got:
            loads(text)
        assert str(got.value) == str(e)
        return
    got_v = loads(text)
    assert same(got_v, want), (text, got_v, want)


def test_jsonb_in_array_and_random_documents() -> None:
    rnd = random.Random(11)

    def doc(depth: int) -> Any:
        k = rnd.randrange(9 if depth < 4 else 6)
        if k == 0:
            return rnd.randrange(-10**20, 10**20)
        if k == 1:
            return rnd.choice([0.0, -0.0, 1.5, 1e-7, 1e22, rnd.random() * 10**rnd.randrange(-30, 30)])
        if k == 2:
            return "".join(rnd.choice('ab"\\\n\té😀\u2028/\x1f') for _ in range(rnd.randrange(8)))
        if k in (3, 4, 5):
            return rnd.choice([True, False, None, rnd.randrange(1000)])
        if k in (6, 7):
            return [doc(depth + 1) for _ in range(rnd.randrange(4))]
        return {str(doc(depth + 1)): doc(depth + 1) for _ in range(rnd.randrange(4))}

    for _ in range(400):
        d = doc(0)
        for text in (json.dumps(d), json.dumps(d, ensure_ascii=False),
                     json.dumps(d, separators=(",", ":"), indent=rnd.choice([None, 2]))):
            assert same(loads(text), json.loads(text)), text


@pytest.mark.parametrize("oid", [114, 3802])
def test_json_cells_are_their_text_by_default(oid: int) -> None:
    text = ' {"a" : [1, 2.50]}  '
    assert same(dec(oid, text), text)  # asyncpg's str, whitespace and all


def test_json_keys_are_shared_between_rows() -> None:
    a = loads('{"tag": 1}')
    b = loads('{"tag": 2}')
    assert next(iter(a)) is next(iter(b))  # interned: one string per key


@pytest.mark.parametrize("u", [
    uuid.UUID(int=0), uuid.UUID(int=1), uuid.UUID(int=2**128 - 1), uuid.uuid4(),
    uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
])
def test_uuid_is_a_full_uuid(u: uuid.UUID) -> None:
    got = dec(2950, str(u))
    assert type(got) is pg.UUID and isinstance(got, uuid.UUID)
    assert got == u and hash(got) == hash(u) and got.int == u.int
    assert str(got) == str(u) and repr(got) == repr(u) and got.bytes == u.bytes
    assert got.is_safe is uuid.SafeUUID.unknown
    assert got.version == u.version and got.variant == u.variant
    assert pickle.loads(pickle.dumps(got)) == u
    assert copy.deepcopy(got) == u
    with pytest.raises(TypeError):
        got.int = 5  # type: ignore[misc]
    assert sorted([got, uuid.UUID(int=7)]) == sorted([u, uuid.UUID(int=7)])
