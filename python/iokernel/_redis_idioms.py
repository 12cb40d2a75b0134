"""redis-py idioms the clients and pipelines share: dict-style access
(``r["k"] = v``, ``r["k"]``, ``"k" in r``, ``del r["k"]``), the message of a
pipeline error, and the state of a pipeline in WATCH mode.

A pipeline that was told ``watch(...)`` holds a connection of its own (a
lease, as ``dedicated()``) until ``execute()`` or ``reset()``: its commands
run at once there (reads to decide what to write) until ``multi()``, after
which they queue for MULTI/EXEC on that same connection, as in redis-py.
The lease (``Lease``) also goes back when a pipeline is dropped without
either (an exception in user code, a forgotten ``await reset()``).
"""

from __future__ import annotations

import contextlib
import textwrap
from typing import Any

from . import _options
from ._errors import Error, ResponseError
from ._redis_commands_support import Key, Value

#: Blocking commands, as the typed methods spell them (upper-case bytes):
#: these go to a dedicated connection so they never stall the shared one.
_BLOCKING = frozenset(
    b"BLPOP BRPOP BLMOVE BRPOPLPUSH BZPOPMIN BZPOPMAX BLMPOP BZMPOP WAIT WAITAOF".split()
)
_DEFAULT = object()
_NO_LIMIT = "no limit"
_NAME_TYPES = (str, bytes, bytearray, memoryview)


def _upper(word: Any) -> bytes:
    if isinstance(word, str):
        return word.upper().encode()
    if isinstance(word, (bytes, bytearray, memoryview)):
        return bytes(word).upper()
    return b""



def _checked(args: tuple[Any, ...], timeout: Any) -> Any:
    """Check ``execute()``'s arguments; the caller's timeout in seconds, or
    ``_DEFAULT`` if none was given."""
    if not args:
        raise TypeError("execute() needs a command name, e.g. execute('GET', 'key')")
    if not isinstance(args[0], _NAME_TYPES):
        raise TypeError(
            f"execute(): the command name must be str or bytes, not {type(args[0]).__name__}"
        )
    if timeout is _DEFAULT:
        return timeout
    return _options.seconds_or_none("timeout", timeout, none=_NO_LIMIT)




class DictAccess:
    """``r[name]`` (KeyError if missing), ``r[name] = value``, ``del r[name]``,
    ``name in r``, for the blocking client (redis-py's spelling)."""

    def __getitem__(self, name: Key) -> Any:
        value = self.get(name)  # type: ignore[attr-defined]
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: Key, value: Value) -> None:
        self.set(name, value)  # type: ignore[attr-defined]

    def __delitem__(self, name: Key) -> None:
        self.delete(name)  # type: ignore[attr-defined]

    def __contains__(self, name: Key) -> bool:
        return bool(self.exists(name))  # type: ignore[attr-defined]


def _word(x: Any) -> str:
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).decode("utf-8", "replace")
    return str(x)


def annotate(err: ResponseError, i: int, cmd: tuple[Any, ...]) -> ResponseError:
    """redis-py's message: ``Command # 3 (LPUSH c 3) of pipeline caused
    error: <server message>``; the class (NoScriptError, ...) is kept."""
    text = textwrap.shorten(" ".join(map(_word, cmd)), width=100, placeholder="...",
                            break_long_words=True)
    return type(err)(f"Command # {i + 1} ({text}) of pipeline caused error: {err}")


class PipelineError(Error):
    """Misuse of a pipeline's WATCH/MULTI (redis-py raises ``RedisError``)."""


class Lease:
    """A dedicated connection of a pipeline's own, given back exactly once:
    by ``release()``, or when the last reference to it goes (the pipeline
    was dropped, or garbage-collected, without ``execute()``/``reset()``).
    Closing the connection ends its WATCH on the server too."""

    __slots__ = ("_svc", "conn")

    def __init__(self, svc: Any, conn: int) -> None:
        self._svc: Any = svc  # the service it came from (even if the client closes)
        self.conn = conn

    def release(self) -> None:
        svc, self._svc = self._svc, None
        if svc is not None:
            svc.release(self.conn)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # e.g. at interpreter exit
            self.release()


class WatchState:
    """What a pipeline in WATCH mode holds: the leased connection (bound
    client) and whether ``multi()`` was called."""

    def __init__(self) -> None:
        self.bound: Any = None  # the client bound to the leased connection
        self.lease: Lease | None = None  # None: the client's own dedicated one
        self.watching = False
        self.multi = False

    @property
    def conn(self) -> int | None:
        return None if self.lease is None else self.lease.conn

    def release(self) -> None:
        if self.lease is not None:
            self.lease.release()

    def check_watch(self) -> None:
        if self.multi:
            raise PipelineError("Cannot issue a WATCH after a MULTI")

    def check_multi(self, queued: int) -> None:
        if self.multi:
            raise PipelineError("Cannot issue nested calls to MULTI")
        if queued:
            raise PipelineError("Commands without an initial WATCH have already been issued")
        self.multi = True

    @property
    def immediate(self) -> bool:
        """Commands run at once (WATCH given, MULTI not yet)."""
        return self.watching and not self.multi
