"""Keyword forms of the natively implemented methods (``get(name=...)``,
``set("k", value=..., ex=...)``) behave exactly as the positional forms.

For every method of test_fast_path.CASES and every argument list there
(plain values, every odd sample per slot, the arity edges), each way of
passing the arguments by keyword that Python allows (a positional prefix,
the rest by the parameter names of the Python method) must give what the
all-positional call gives: the same result, or the same exception (type,
message, stage), and the same data on the server. Then the keyword-only
options (``ex=``, ``nx=``, ``amount=`` ...) against their positional
spelling where one exists, and misspelt keywords.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from iokernel._redis_commands import Commands
from tests.integration.redis_commands.driver import Driver
from tests.integration.redis_commands.test_fast_path import (
    CASES,
    Case,
    _arg_lists,
    _dump,
    _run,
    _same,
    _seed,
)


def _keyword_forms(method: str, args: tuple[Any, ...]) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """``args`` split into a positional prefix and keywords, every split
    Python allows for the signature of ``Commands.<method>``."""
    params = list(inspect.signature(getattr(Commands, method)).parameters.values())[1:]
    forms = []
    for cut in range(len(args)):
        named = args[cut:]
        if len(named) > len(params) - cut:
            continue
        ps = params[cut:cut + len(named)]
        if any(p.kind is not p.POSITIONAL_OR_KEYWORD for p in ps):
            continue  # a *args slot cannot be named
        forms.append((args[:cut], {p.name: a for p, a in zip(ps, named)}))
    return forms


def _named(case: Case) -> bool:
    """Whether the method has a parameter a caller can name (not delete(*names))."""
    params = list(inspect.signature(getattr(Commands, case.method)).parameters.values())[1:]
    return any(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)


NAMED = [c for c in CASES if _named(c)]


def test_every_variadic_only_method_is_known() -> None:
    """Only delete/unlink/exists/touch (``*names``) have nothing to name."""
    assert sorted(c.method for c in CASES if not _named(c)) == [
        "delete", "exists", "touch", "unlink"]


@pytest.mark.parametrize("case", NAMED, ids=[c.method for c in NAMED])
async def test_keyword_form_equals_positional_form(r: Driver, ref: Any, case: Case) -> None:
    client = r.client
    method = getattr(client, case.method)
    tried = 0
    for args in _arg_lists(case):
        _seed(ref)
        positional = await _run(r, method, args)
        positional_state = _dump(ref)
        for head, kwargs in _keyword_forms(case.method, args):
            _seed(ref)
            keyword = await _run(r, lambda *a, kw=kwargs: method(*a, **kw), head)
            assert _same(keyword, positional, case.method), (
                case.method, args, kwargs, keyword, positional)
            assert _dump(ref) == positional_state, (case.method, args, kwargs)
            tried += 1
    assert tried, f"{case.method}: no keyword form tried"


# Keyword-only options and their positional spelling (None: no such spelling).
OPTIONS = [
    ("set", ("k", "v"), {"ex": 100}, None),
    ("set", ("k", "v"), {"px": 100000, "xx": True}, None),
    ("set", ("s", "v"), {"nx": True}, None),
    ("set", ("s", "v"), {"get": True}, None),
    ("set", ("s", "v"), {"keepttl": True}, None),
    ("set", ("k", "v"), {"ex": 10.0}, None),  # DataError, as redis-py
    ("set", ("k", "v"), {"ex": 1, "px": 1}, None),
    ("set", ("k", True), {}, None),
    ("incr", ("n",), {"amount": 4}, ("n", 4)),
    ("incrby", ("n",), {"amount": -2}, ("n", -2)),
    ("decr", ("n",), {"amount": 3}, ("n", 3)),
    ("decrby", ("n",), {"amount": 3}, ("n", 3)),
    ("hincrby", ("h", "f"), {"amount": 5}, ("h", "f", 5)),
    ("expire", ("s", 50), {"nx": True}, None),
    ("expire", ("s", 50), {"gt": True}, None),
    ("expire", ("s", 50), {"nx": True, "xx": True}, None),
    ("pexpire", ("s", 50000), {"lt": True}, None),
    ("hset", ("h",), {"mapping": {"a": 1, "b": 2}}, None),
    ("hset", ("h",), {"items": ["a", 1, "b", 2]}, None),
    ("hset", ("h", "g"), {"value": "v"}, ("h", "g", "v")),
    ("mget", (), {"keys": ["s", "n"]}, (["s", "n"],)),
    ("get", (), {"nme": "s"}, None),  # misspelt: TypeError
    ("set", ("k",), {"valeu": "v"}, None),
    ("get", ("s",), {"name": "s"}, None),  # given twice: TypeError
]


@pytest.mark.parametrize(("method", "args", "kwargs", "positional"), OPTIONS,
                         ids=[f"{m}-{'-'.join(k) or 'none'}" for m, _, k, _ in OPTIONS])
async def test_keyword_options_as_the_python_method(
    r: Driver, ref: Any, method: str, args: tuple[Any, ...], kwargs: dict[str, Any],
    positional: tuple[Any, ...] | None,
) -> None:
    """Through the client (native method, falling back) and through the
    Python method itself: the same outcome and data; and the same as the
    positional spelling where there is one."""
    client = r.client
    _seed(ref)
    via_client = await _run(r, lambda *a: getattr(client, method)(*a, **kwargs), args)
    state = _dump(ref)
    _seed(ref)
    python = getattr(Commands, method)
    via_python = await _run(r, lambda *a: python(client, *a, **kwargs), args)
    assert _same(via_client, via_python, method), (via_client, via_python)
    assert _dump(ref) == state
    if positional is not None:
        _seed(ref)
        plain = await _run(r, getattr(client, method), positional)
        assert _same(via_client, plain, method), (via_client, plain)
        assert _dump(ref) == state
