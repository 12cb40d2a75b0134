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


class TLSError(ConnectionError):
    """A TLS connection could not be made. ``tls_reason`` says why:
    ``"unknown_ca"`` (the server's certificate is not signed by a trusted
    CA), ``"expired"``, ``"hostname_mismatch"``, ``"not_supported"`` (the
    server does not do TLS, or answered in plain text on a TLS port),
    ``"client_cert_refused"`` (it wants a client certificate, or refused
    ours), ``"revoked"`` (its certificate is on a revocation list given,
    ``sslcrl``), ``"closed"`` (it closed the connection during the handshake),
    ``"handshake_failed"``. The message names the option that changes the
    outcome. Never retried in plain text unless the mode says so
    (PostgreSQL ``sslmode=prefer``/``allow``)."""

    tls_reason: str | None = None


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
    stays usable.

    As in redis-py, the error code picks a subclass: ``NOSCRIPT`` ->
    ``NoScriptError``, ``READONLY`` -> ``ReadOnlyError``, ``LOADING`` ->
    ``BusyLoadingError``, ``NOPERM`` -> ``NoPermissionError``, ``OOM`` ->
    ``OutOfMemoryError``, ``EXECABORT`` -> ``ExecAbortError``, ``WRONGPASS``
    and ``NOAUTH`` -> ``AuthenticationError``."""

    stage = "answered"

    def __new__(cls, *args: object) -> ResponseError:
        if cls is ResponseError and args and isinstance(args[0], str):
            sub = _BY_CODE.get(args[0].split(" ", 1)[0])
            if sub is not None:
                return super().__new__(sub, *args)
        return super().__new__(cls, *args)


class DataError(Error, TypeError, ValueError):
    """An argument iokernel refuses before sending anything (redis-py's
    ``DataError``): a value of a type Redis has no spelling for, or options
    that exclude each other. Also a ``TypeError`` and a ``ValueError``, the
    builtin classes such mistakes raised before."""


class WatchError(Error):
    """A transaction was aborted because a WATCHed key changed."""


class NoScriptError(ResponseError):
    """EVALSHA named a script the server does not have (``NOSCRIPT``)."""


class ReadOnlyError(ResponseError):
    """A write reached a read-only replica (``READONLY``)."""


class BusyLoadingError(ResponseError, ConnectionError):
    """The server is still loading its dataset (``LOADING``); retry later."""


class NoPermissionError(ResponseError):
    """The ACL user may not run this command or touch this key (``NOPERM``)."""


class OutOfMemoryError(ResponseError):
    """The server is over ``maxmemory`` and refused a write (``OOM``)."""


class ExecAbortError(ResponseError):
    """EXEC discarded a transaction with an invalid command (``EXECABORT``)."""


class AuthenticationError(ResponseError, ConnectionError):
    """Wrong or missing credentials (``WRONGPASS``, ``NOAUTH``)."""


class ModuleError(ResponseError):
    """A Redis module command failed."""


class PubSubError(Error):
    """Misuse of publish/subscribe."""


class InvalidResponse(ProtocolError):
    """redis-py's name for a reply that is not valid RESP."""


#: Error code (first word of the server's message) -> ResponseError subclass.
_BY_CODE: dict[str, type[ResponseError]] = {
    "NOSCRIPT": NoScriptError,
    "READONLY": ReadOnlyError,
    "LOADING": BusyLoadingError,
    "NOPERM": NoPermissionError,
    "OOM": OutOfMemoryError,
    "EXECABORT": ExecAbortError,
    "WRONGPASS": AuthenticationError,
    "NOAUTH": AuthenticationError,
}

#: redis-py's root class name.
RedisError = Error


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


class PostgresDataError(PostgresError, ValueError):
    """``iokernel.pg.DataError``. A query argument does not fit its
    parameter's type (asyncpg's ``DataError``, raised before anything is sent): the message names the
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
