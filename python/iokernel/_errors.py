"""The exception tree. One shallow hierarchy for every protocol.

``Error`` is the root. Transport failures subclass the builtin exception of
the same meaning too, so ``except TimeoutError`` and ``except
ConnectionError`` keep working for code written against the standard library.
The native module raises these classes (it looks them up here by name).
"""

from __future__ import annotations

import builtins


class Error(Exception):
    """Base class of every error iokernel raises.

    ``stage`` says where the request got to, for code that decides whether
    it may be sent again: ``"not_sent"`` (never written: nothing happened on
    the server), ``"written"`` (written, no complete answer: the server may
    or may not have acted on it), ``"answered"`` (the server answered; the
    error is about the answer). ``reason`` says which failure of its kind it
    was, where that is known: ``"connect_failed"``, ``"connect_timeout"``,
    ``"no_connection"`` (none became available within the timeout),
    ``"no_endpoint"`` (no endpoint fits the request), ``"reply_timeout"``,
    ``"connection_lost"``; ``None`` otherwise.
    """

    stage: str | None = None
    reason: str | None = None


class ConnectionError(Error, builtins.ConnectionError):  # noqa: A001
    """Could not connect, or the connection broke while the request was out.

    A request that got this error may or may not have run on the server.
    """


class TimeoutError(Error, builtins.TimeoutError):  # noqa: A001
    """No reply within the timeout. The request may still run on the server."""


class ProtocolError(Error):
    """The server sent bytes that are not valid for the protocol, or a reply
    larger than a configured limit. The connection was closed and is being
    re-established."""


class ResponseTooLargeError(Error):
    """A message of the reply was larger than the client's limit (``option``
    names it, e.g. ``max_message_size``). Only this request failed: the
    message was read and discarded, and the connection stays usable."""

    stage = "answered"
    option: str = ""


class OverloadedError(Error):
    """Too many requests queued or in flight; nothing was sent. Slow down,
    or raise the client's ``max_queued``/``max_in_flight``."""


class ResponseError(Error):
    """The server answered with an error (Redis ``-ERR ...``). The connection
    stays usable."""

    stage = "answered"


class WatchError(Error):
    """A transaction was aborted because a WATCHed key changed."""


class PostgresError(Error):
    """The PostgreSQL server answered with an error. The connection stays
    usable. Attributes: ``sqlstate`` (e.g. ``"23505"``), ``severity``,
    ``message``, ``detail``, ``hint``, ``position``, ``schema_name``,
    ``table_name``, ``column_name``, ``constraint_name``."""

    stage = "answered"
    sqlstate: str = ""
    severity: str = ""
    message: str = ""
    detail: str | None = None
    hint: str | None = None
    position: int | None = None
    schema_name: str | None = None
    table_name: str | None = None
    column_name: str | None = None
    constraint_name: str | None = None


class DataError(PostgresError, ValueError):
    """A query argument does not fit its parameter's type (asyncpg's
    ``DataError``, raised before anything is sent): the message names the
    argument (``$2``), the parameter's type and what was given. SQLSTATE
    22000 (data exception), as the server would say."""

    stage = "not_sent"
    sqlstate = "22000"


class InterfaceError(Error, TypeError):
    """The call does not fit the request (asyncpg's ``InterfaceError``): a
    wrong number of query arguments (nothing was sent; a ``TypeError`` too,
    as a wrong number of arguments to a function is), or a request this
    call cannot carry out (e.g. ``COPY ... FROM STDIN`` through
    ``execute()``; use the ``copy_*`` methods). Nothing is wrong with the
    connection."""
