"""Checks of client options, shared by the Redis and PostgreSQL clients.

Every option is checked where it is given (at construction, or per call for
``timeout=``), so a bad value fails at once with a ``TypeError`` (wrong kind
of value) or ``ValueError`` (right kind, out of range) whose message names
the option, the value and what is allowed. Nothing is silently reinterpreted.

The rules:

* Seconds: a real number (``int``, ``float``, ...; ``bool`` and ``str`` are
  not), > 0 and at most ``MAX_SECONDS``. ``None`` only where the option
  gives it a meaning ("no limit", "off"), stated in the message; 0,
  negative, NaN and infinity are refused (say ``None`` for "no limit").
* Counts: an integer (not ``bool``), at least 1, at most ``MAX_COUNT`` (or
  less where each one costs something up front, e.g. a connection); 0 only
  where the option documents what it means (``max_queued=0``: no queue).
* Flags: ``True`` or ``False``.
"""

from __future__ import annotations

import codecs
import math
import numbers
from collections.abc import Sequence
from typing import Any

__all__ = ["MAX_COUNT", "MAX_SECONDS", "count", "flag", "name_text", "seconds", "seconds_or_none", "text_mode"]

#: Longest finite duration accepted (a year); longer means "no limit": None.
MAX_SECONDS = 365 * 24 * 3600.0
#: Largest count accepted; limits past this are not limits.
MAX_COUNT = 2**31 - 1
_SECONDS = f"a number of seconds > 0 and <= {MAX_SECONDS:.0f} (a year)"


def _bad(kind: type[Exception], name: str, value: Any, allowed: str) -> Exception:
    return kind(f"{name}={value!r} is not allowed: {name} must be {allowed}")


def seconds(name: str, value: Any) -> float:
    """``value`` as seconds (a float); None is refused."""
    return _seconds(name, value, _SECONDS)


def seconds_or_none(name: str, value: Any, *, none: str) -> float | None:
    """``value`` as seconds, or None, which means ``none`` for this option."""
    if value is None:
        return None
    return _seconds(name, value, f"{_SECONDS}, or None ({none})")


def _seconds(name: str, value: Any, allowed: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _bad(TypeError, name, value, allowed)
    secs = float(value)
    if math.isnan(secs) or not 0 < secs <= MAX_SECONDS:
        raise _bad(ValueError, name, value, allowed)
    return secs


def count(name: str, value: Any, *, zero: str | None = None, most: int = MAX_COUNT,
          least: int = 1) -> int:
    """``value`` as a count from ``least`` (default 1; 0 when ``zero`` says
    what 0 means) to ``most``."""
    if zero is not None:
        least = 0
    allowed = f"a whole number from {least} to {most}"
    if zero is not None:
        allowed += f" (0: {zero})"
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _bad(TypeError, name, value, allowed)
    n = int(value)
    if not least <= n <= most:
        raise _bad(ValueError, name, value, allowed)
    return n


def flag(name: str, value: Any) -> bool:
    """``value`` if it is True or False."""
    if not isinstance(value, bool):
        raise _bad(TypeError, name, value, "True or False")
    return value


def name_text(name: str, value: Any, *, none: str) -> str | None:
    """A name sent to the server (e.g. Redis ``CLIENT SETNAME``): None
    (``none`` says what that means), or non-empty printable ASCII without
    spaces, as Redis requires."""
    allowed = f"None ({none}) or a non-empty str of printable ASCII without spaces"
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(TypeError, name, value, allowed)
    if not value or not all("!" <= ch <= "~" for ch in value):
        raise _bad(ValueError, name, value, allowed)
    return value


def text_or_none(name: str, value: Any, *, none: str) -> str | None:
    """Any str (a password), or None (``none`` says what that means)."""
    if value is None or isinstance(value, str):
        return value
    # The value is a secret: name its type only.
    raise TypeError(f"{name} must be None ({none}) or a str, not {type(value).__name__}")


def text_mode(decode: bool, encoding: Any, errors: Any, handlers: Sequence[str]) -> int:
    """redis-py's ``decode_responses``/``encoding``/``encoding_errors`` as one
    number for the native conversion: bit 0 ``decode``, the bits above it
    the index of ``errors`` in ``handlers`` (the codec error handlers it
    knows). UTF-8 is the only encoding."""
    try:
        name = codecs.lookup(encoding).name if isinstance(encoding, str) else None
    except LookupError:
        name = None
    if name != "utf-8":
        raise ValueError(f"encoding={encoding!r}: iokernel encodes and decodes UTF-8 only")
    if not isinstance(errors, str) or errors not in handlers:
        raise _bad(ValueError, "encoding_errors", errors, "one of " + ", ".join(map(repr, handlers)))
    return handlers.index(errors) << 1 | int(decode)
