"""PostgreSQL clients on the I/O kernel, with the methods asyncpg users know.

    db = pg.AsyncClient("postgresql://app:secret@127.0.0.1:5432/app")
    rows = await db.fetch("SELECT id, name FROM users WHERE id = ANY($1)", [1, 2])
    await db.execute("UPDATE users SET name = $1 WHERE id = $2", "Ada", 1)  # "UPDATE 1"
    async with db.transaction() as tx:
        await tx.execute("INSERT INTO audit(msg) VALUES ($1)", "hello")

Many callers share a few pipelined connections per server (``connections``,
default 2): every query is its own Parse/Bind/Execute/Sync sequence, so one
failing query never disturbs the others. Statements are prepared once per
connection and cached (``statement_cache_size``). ``transaction()`` runs on a
dedicated connection: commit on success, rollback on an exception, nested
blocks become savepoints; queries outside the block never run inside it.

Rows are ``Record``s: tuples that also allow ``row["column"]``. Server errors
raise ``PostgresError`` (``.sqlstate``, ``.detail``, ``.hint`` ...); the
connection stays usable. ``Client`` is the blocking twin with the same methods.

Types: a statement is described once per service (one round trip, cached,
shared by concurrent first uses; its Parse prepares it on that connection);
arguments are encoded in binary for its types, and one that does not fit is
refused before sending (``DataError`` naming ``$n``, the type and the value;
``InterfaceError`` for a wrong count). Results come back as asyncpg returns
them (``iokernel.pgtypes``; json/jsonb as ``str``); ``set_type_codec`` adds
codecs for any type: ``set_type_codec("jsonb", encoder=json.dumps,
decoder=json.loads, schema="pg_catalog")`` gives objects (``json.loads``
itself is run by a native parser: same objects, faster).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from . import _aio, _native, _options, _pg_copy, _pg_learn, _shared, _tls
from . import _pg_types as _pgt
from ._endpoints import Endpoints
from ._errors import InterfaceError, PostgresError, ResponseTooLargeError
from ._errors import PostgresDataError as DataError
from ._pg_query import _DEFAULT, QueryMethods
from ._pg_streams import AsyncListener, Gap, Listener, Notification, acursor, cursor

__all__ = [
    "UUID", "AsyncClient", "AsyncListener", "Client", "DataError", "Gap", "InterfaceError",
    "Listener", "Notification", "PostgresError", "Record", "ResponseTooLargeError",
]

Record = _native.Record
# What uuid values come back as: a uuid.UUID subclass holding its 16 bytes inline.
UUID = _native.UUID
# What the native query methods return for a statement not described yet.
_UNKNOWN = _native.UNKNOWN_STATEMENT
_NO_LIMIT = "no limit"
# Each connection gets its kernel task when the client is made: a bound well
# past any server's max_connections, far below what would exhaust memory.
_MAX_CONNECTIONS = 1024
_savepoints = itertools.count(1)
# max_message_size: below 1 KiB even an error message would not fit; the
# length header of a message is an Int32.
_MIN_MESSAGE, _MAX_MESSAGE = 1024, 2**31 - 1


class _Base(Endpoints, QueryMethods):
    """Options, the shared native service, and the query methods written
    once (``QueryMethods``): each returns what ``_q``/``_many`` return (a
    value for ``Client``, an awaitable for ``AsyncClient``)."""

    def __init__(
        self,
        dsn: str,
        *,
        timeout: float | None = 30.0,
        connections: int = 2,
        max_in_flight: int = 1024,
        max_queued: int = 16384,
        statement_cache_size: int = 256,
        connect_timeout: float | None = None,
        health_check_interval: float | None = 5.0,
        max_dedicated: int = 16,
        max_message_size: int = 64 << 20,
        sslmode: str | None = None,
        sslrootcert: str | None = None,
        sslcert: str | None = None,
        sslkey: str | None = None,
        sslnegotiation: str | None = None,
        sslpassword: str | None = None,
        sslcrl: str | None = None,
        sslcrldir: str | None = None,
        sslcertmode: str | None = None,
        ssl: bool | str | None = None,
        idempotent: bool = False,
    ) -> None:
        """``timeout``: seconds per query (None: no limit), enforced by the
        kernel: the caller gets ``TimeoutError`` at once. The statement is
        not undone by that: if it is still running 250 ms later the kernel
        cancels it on the server (rolled back), but one that finishes in
        between takes effect. ``connections``: pipelined connections per
        server, from 1 to 1024 (the server runs one query at a time per
        connection). ``max_in_flight`` (at least 1) queries per connection at
        once; ``max_queued`` more may wait (0: none may).
        ``statement_cache_size``: prepared statements kept per connection (0:
        none; every query is parsed again). ``connect_timeout``: seconds,
        overrides the DSN's (None: the DSN's, else 10).
        ``health_check_interval``: check an idle connection this often (None:
        never). ``max_dedicated``: transactions open at once, at least 1;
        more wait (up to ``timeout``) for one to finish.
        ``max_message_size``: bytes, the largest message of a reply (a row,
        an error, a chunk of COPY data) accepted, default 64 MiB; a larger
        one fails only its own request with ``ResponseTooLargeError`` (its
        bytes are read and discarded, the connection goes on serving the
        others). ``idempotent``: every query may run twice, so one whose
        connection is lost after it was sent is sent again instead of failing
        with ``ConnectionError`` "outcome unknown" (queries never sent are
        always sent again; see docs/architecture.md, "Retry safety").

        TLS, as libpq: ``sslmode`` (``disable``, ``allow``, ``prefer`` (the
        default), ``require``, ``verify-ca``, ``verify-full``),
        ``sslrootcert`` (a CA file, or ``"system"``), ``sslcert``/``sslkey``
        (client certificate; ``sslpassword`` for an encrypted PKCS#8 key),
        ``sslcrl``/``sslcrldir`` (revocation lists), ``sslcertmode``
        (``allow``, ``disable``), ``sslnegotiation`` (``postgres`` or
        ``direct``, PostgreSQL 17+); as keyword arguments, URL query
        parameters or ``PGSSLMODE``/``PGSSLROOTCERT``/... (keywords win over
        the URL, the URL over the environment). ``ssl``: asyncpg's form (an
        sslmode string, True: verify-full, False: disable). A TLS failure
        raises ``iokernel.TLSError`` (``.tls_reason``).

        Seconds are numbers > 0 (not 0, NaN or infinity: None says "no
        limit" where allowed); a bad value raises ``TypeError`` or
        ``ValueError`` naming the option (see ``iokernel._options``)."""
        timeout = _options.seconds_or_none("timeout", timeout, none=_NO_LIMIT)
        connect_timeout = _options.seconds_or_none(
            "connect_timeout", connect_timeout, none="the DSN's connect_timeout, else 10 s"
        )
        ssl_params = _tls.pg_params(
            ssl=ssl, sslmode=sslmode, sslrootcert=sslrootcert, sslcert=sslcert, sslkey=sslkey,
            sslpassword=sslpassword, sslcrl=sslcrl, sslcrldir=sslcrldir,
            sslcertmode=sslcertmode, sslnegotiation=sslnegotiation,
        )  # fmt: skip
        self._svc: _native.PgService = _shared.service(
            _native.PgService,
            dsn,
            connections=_options.count("connections", connections, most=_MAX_CONNECTIONS),
            max_in_flight=_options.count("max_in_flight", max_in_flight),
            max_queued=_options.count("max_queued", max_queued, zero="no queue"),
            statement_cache_size=_options.count(
                "statement_cache_size", statement_cache_size, zero="no statement cache"
            ),
            connect_timeout=connect_timeout,
            idle_ping=_options.seconds_or_none(
                "health_check_interval", health_check_interval, none="no health checks"
            ),
            max_dedicated=_options.count("max_dedicated", max_dedicated),
            idempotent=_options.flag("idempotent", idempotent),
            max_message_size=_options.count(
                "max_message_size", max_message_size, least=_MIN_MESSAGE, most=_MAX_MESSAGE
            ),
            ssl=ssl_params,
        )
        self._timeout = timeout
        self._dsn = dsn
        # What a listener's own service is opened with.
        self._listen_opts = {
            "connect_timeout": connect_timeout,
            "idle_ping": _options.seconds_or_none(
                "health_check_interval", health_check_interval, none="no health checks"),
            "max_message_size": max_message_size,
            "ssl": ssl_params,
        }
        self._connect_timeout = connect_timeout or 10.0
        # Waiting for a dedicated connection: the query timeout, or at least
        # the time to open one.
        self._lease_timeout = max(timeout or 0.0, self._connect_timeout)
        self._conn: int | None = None

    def _t(self, timeout: Any) -> float | None:
        """A call's ``timeout=`` (seconds, None: no limit), checked; the
        client's if not given."""
        if timeout is _DEFAULT:
            return self._timeout
        return _options.seconds_or_none("timeout", timeout, none=_NO_LIMIT)

    def _prefetch(self, prefetch: Any) -> int:
        return _options.count("prefetch", prefetch, most=1 << 20)

    def set_type_codec(self, typename: str, *, encoder: Any, decoder: Any,
                       schema: str = "public", format: str = "text") -> Any:
        """Encode and decode values of type ``schema.typename`` with your own
        functions, as asyncpg's ``set_type_codec``: with ``format="text"``
        ``encoder(value) -> str`` and ``decoder(str) -> value`` work on the
        type's text form, with ``format="binary"`` on ``bytes`` in the
        type's binary form. Applies to every client sharing this service
        (same DSN and options), also to arrays of the type. Enums and
        domains need no codec. ``decoder=json.loads`` (that very function)
        on json/jsonb with ``format="text"`` decodes natively, same result."""
        if format not in ("text", "binary"):
            raise ValueError(f"format must be 'text' or 'binary', not {format!r}")
        return self._codec(typename, schema, encoder, decoder, format == "binary")

    def _codec(self, typename: str, schema: str, encoder: Any, decoder: Any,
               binary: bool) -> Any:
        raise NotImplementedError

    @property
    def dsn(self) -> str:
        """The URL, without secrets."""
        return self._svc.name

    def stats(self) -> dict[str, int]:
        return self._svc.stats()

    def _bound(self, conn: int) -> Any:
        twin = object.__new__(type(self))
        twin.__dict__.update(self.__dict__)
        twin._conn = conn
        return twin

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._svc.name}>"


class Client(_Base):
    """Blocking PostgreSQL client. Thread-safe: share one across threads."""

    def _q(self, shape: int, sql: str, args: tuple[Any, ...], column: int = 0,
           timeout: Any = _DEFAULT, simple: bool = False, idem: bool = False) -> Any:
        t = self._t(timeout)
        try:
            r = self._svc.query(shape, sql, args, column, t, self._conn, simple, idem)
        except DataError:
            if not _pgt.stale(self._svc, sql):
                raise
            r = _UNKNOWN
        while r is _UNKNOWN:
            self._learn(sql, t)
            r = self._svc.query(shape, sql, args, column, t, self._conn, simple, idem)
        return r

    def _learn(self, sql: str, t: float | None) -> None:
        _pg_learn.learn(self, sql, t)

    def _many(self, sql: str, rows: Iterable[Any], timeout: Any) -> None:
        t = self._t(timeout)
        types = _pg_learn.params(self, sql, t)
        try:
            self._svc.query_many(sql, rows, t, self._conn, types)
        except DataError:
            # Refused before anything was sent, rows that can be read again:
            # the table may have changed; describe it again and retry once.
            if self._conn is not None or not isinstance(rows, (list, tuple)) \
                    or not _pgt.stale(self._svc, sql):
                raise
            self._svc.query_many(sql, rows, t, self._conn, _pg_learn.params(self, sql, t))

    def _codec(self, typename: str, schema: str, encoder: Any, decoder: Any,
               binary: bool) -> None:
        oid = self.fetchval(_pgt.TYPE_OID, typename, schema)
        if oid is None:
            raise ValueError(f"unknown type: {schema}.{typename}")
        self._svc.set_codec(oid, encoder, decoder, binary)

    @contextmanager
    def transaction(self) -> Iterator[Client]:
        """``with db.transaction() as tx:`` — a transaction on a dedicated
        connection (a savepoint when ``tx.transaction()`` is nested)."""
        if self._conn is not None:
            name = f"iok_sp{next(_savepoints)}"
            self.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                with contextlib.suppress(Exception):
                    self.execute(f"ROLLBACK TO SAVEPOINT {name}")
                raise
            self.execute(f"RELEASE SAVEPOINT {name}")
            return
        conn = self._svc.lease(self._lease_timeout)
        tx = self._bound(conn)
        try:
            tx.execute("BEGIN")
            try:
                yield tx
            except BaseException:
                with contextlib.suppress(Exception):
                    tx.execute("ROLLBACK")
                raise
            tx.execute("COMMIT")
        finally:
            self._svc.release(conn)

    def cursor(self, sql: str, *args: Any, prefetch: int = 50) -> Iterator[Record]:
        """``for row in db.cursor(sql, *args, prefetch=50):`` — the rows one
        by one, read ``prefetch`` at a time as the server sends them, with at
        most two batches in memory however big the result (the server waits
        while the consumer is behind). Unlike asyncpg it needs no
        transaction: outside one it runs on a dedicated connection of its
        own (held until the loop ends), inside one on the transaction's. No
        per-query timeout applies."""
        return cursor(self._svc, self._conn, self._lease_timeout, sql, args,
                      self._prefetch(prefetch), lambda q: self._learn(q, self._timeout))

    def copy_records_to_table(self, table_name: str, *, records: Iterable[Any],
                              columns: Sequence[str] | None = None,
                              schema_name: str | None = None, timeout: Any = _DEFAULT,
                              where: str | None = None) -> str:
        """Copy ``records`` (tuples, one value per column) into the table with
        COPY FROM STDIN, as asyncpg does: each value encoded as a parameter
        for its column would be, binary format when every column's type
        allows it, else text; returns the status (``"COPY 5"``). A value
        that does not fit its column raises ``TypeError`` naming the record
        and column, and nothing is copied. Runs on a dedicated connection
        (or the transaction's)."""
        return _pg_copy.copy_records(self, table_name, records, columns, schema_name,
                                     self._t(timeout), where)

    def copy_to_table(self, table_name: str, *, source: Any,
                      columns: Sequence[str] | None = None, schema_name: str | None = None,
                      timeout: Any = _DEFAULT, where: str | None = None, **opts: Any) -> str:
        """COPY FROM STDIN reading ``source`` (a path, a file-like object
        opened in binary mode, or an iterable of bytes); ``opts`` are
        asyncpg's (format, delimiter, null, header, quote, escape,
        force_not_null, force_null, encoding, freeze). Returns the status."""
        sql = _pg_copy.to_table_sql(table_name, schema_name, columns, where, **opts)
        return _pg_copy.copy_to_table(self, sql, source, self._t(timeout))

    def copy_from_table(self, table_name: str, *, output: Any,
                        columns: Sequence[str] | None = None, schema_name: str | None = None,
                        timeout: Any = _DEFAULT, **opts: Any) -> str:
        """COPY TO STDOUT of a table into ``output`` (a path, a file-like
        object opened in binary mode, or a callable taking bytes), written
        as the data arrives; returns the status. ``timeout`` is checked but
        a COPY out has no deadline (it takes as long as the output)."""
        self._t(timeout)
        sql = _pg_copy.from_table_sql(table_name, schema_name, columns, **opts)
        return _pg_copy.copy_from(self, sql, output)

    def copy_from_query(self, query: str, *args: Any, output: Any, timeout: Any = _DEFAULT,
                        **opts: Any) -> str:
        """As ``copy_from_table``, for the rows of ``query``; ``$n`` are
        replaced by the arguments quoted by the server (COPY takes no
        parameters), as asyncpg does."""
        t = self._t(timeout)
        lits: list[str | None] = []
        if args:
            if self._svc.statement_params(query) is None:
                self._learn(query, t)
            names = self.fetchval(_pgt.TYPE_NAMES, self._svc.statement_params(query) or [])
            lits = list(self.fetchrow(_pgt.quote_sql(names or []), *args) or ())
        return _pg_copy.copy_from(self, _pg_copy.from_query_sql(query, lits, **opts), output)

    def listen(self, channel: str, *channels: str) -> Listener:
        """``for n in db.listen("jobs"):`` — NOTIFYs on these channels as
        ``Notification(pid, channel, payload)``, delivered as they arrive on
        a connection of the listener's own (LISTENing again after every
        reconnect; a lost connection is reported once as a ``Gap``). Returns
        once the connection is LISTENing. Close it (or ``with``) to stop."""
        return Listener(self._dsn, (channel, *channels), self._listen_opts, self._lease_timeout)

    def close(self) -> None:
        """Close this client: later calls raise ``ConnectionError``; the
        connections close when no client uses them any more."""
        self._svc = _shared.CLOSED

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncClient(_Base):
    """asyncio PostgreSQL client; also under uvloop, from several loops."""

    def _q(self, shape: int, sql: str, args: tuple[Any, ...], column: int = 0,
           timeout: Any = _DEFAULT, simple: bool = False, idem: bool = False) -> Any:
        t = self._t(timeout)
        try:
            # The running loop's completer and a future of it (without the
            # getpid of asyncio.get_running_loop() on Python 3.11).
            r = self._svc.submit(
                *_native.running_call(), shape, sql, args, column, t, self._conn, simple, idem,
            )
        except DataError:
            if not _pgt.stale(self._svc, sql):
                raise
            r = _UNKNOWN
        if r is _UNKNOWN:
            # Described at once (the call is under way when it returns, as
            # a known statement's is; or it joins the describe under way),
            # then sent when the types are known.
            return self._learn_then(_pg_learn.astart(self, sql, t), shape, sql, args, column,
                                    t, simple, idem)
        return r

    async def _learn_then(self, learning: Any, shape: int, sql: str, args: tuple[Any, ...],
                          column: int, t: float | None, simple: bool, idem: bool) -> Any:
        loop = asyncio.get_running_loop()
        await learning
        while True:
            r = self._svc.submit(
                _aio.completer(loop), loop.create_future(), shape, sql, args, column,
                t, self._conn, simple, idem,
            )
            if r is not _UNKNOWN:
                return await r
            await self._learn(sql, t)

    async def _learn(self, sql: str, t: float | None) -> None:
        await _pg_learn.astart(self, sql, t)

    async def _many(self, sql: str, rows: Iterable[Any], timeout: Any) -> None:
        loop = asyncio.get_running_loop()
        t = self._t(timeout)
        types = await _pg_learn.aparams(self, sql, t)
        try:
            fut = self._svc.submit_many(
                _aio.completer(loop), loop.create_future(), sql, rows, t, self._conn, types
            )
        except DataError:
            # As Client._many.
            if self._conn is not None or not isinstance(rows, (list, tuple)) \
                    or not _pgt.stale(self._svc, sql):
                raise
            types = await _pg_learn.aparams(self, sql, t)
            fut = self._svc.submit_many(
                _aio.completer(loop), loop.create_future(), sql, rows, t, self._conn, types
            )
        await fut

    async def _codec(self, typename: str, schema: str, encoder: Any, decoder: Any,
                     binary: bool) -> None:
        oid = await self.fetchval(_pgt.TYPE_OID, typename, schema)
        if oid is None:
            raise ValueError(f"unknown type: {schema}.{typename}")
        self._svc.set_codec(oid, encoder, decoder, binary)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncClient]:
        """``async with db.transaction() as tx:`` — see ``Client.transaction``."""
        if self._conn is not None:
            name = f"iok_sp{next(_savepoints)}"
            await self.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                with contextlib.suppress(Exception):
                    await self.execute(f"ROLLBACK TO SAVEPOINT {name}")
                raise
            await self.execute(f"RELEASE SAVEPOINT {name}")
            return
        conn = await _shared.lease(self._svc, self._lease_timeout)
        tx = self._bound(conn)
        try:
            await tx.execute("BEGIN")
            try:
                yield tx
            except BaseException:
                # The block's own error is what the caller must see; a failed
                # ROLLBACK (e.g. the connection broke) only closes it.
                with contextlib.suppress(Exception):
                    await tx.execute("ROLLBACK")
                raise
            await tx.execute("COMMIT")
        finally:
            self._svc.release(conn)

    def cursor(self, sql: str, *args: Any, prefetch: int = 50) -> AsyncIterator[Record]:
        """``async for row in db.cursor(sql, *args, prefetch=50):`` — see
        ``Client.cursor``."""
        return acursor(self._svc, self._conn, self._lease_timeout, sql, args,
                       self._prefetch(prefetch), lambda q: self._learn(q, self._timeout))

    async def copy_records_to_table(self, table_name: str, *, records: Any,
                                    columns: Sequence[str] | None = None,
                                    schema_name: str | None = None, timeout: Any = _DEFAULT,
                                    where: str | None = None) -> str:
        """See ``Client.copy_records_to_table``; ``records`` may also be an
        async iterable."""
        return await _pg_copy.acopy_records(self, table_name, records, columns, schema_name,
                                            self._t(timeout), where)

    async def copy_to_table(self, table_name: str, *, source: Any,
                            columns: Sequence[str] | None = None,
                            schema_name: str | None = None, timeout: Any = _DEFAULT,
                            where: str | None = None, **opts: Any) -> str:
        """See ``Client.copy_to_table``; ``source`` may also be an async
        iterable of bytes or a file-like object with an async ``read``."""
        sql = _pg_copy.to_table_sql(table_name, schema_name, columns, where, **opts)
        return await _pg_copy.acopy_to_table(self, sql, source, self._t(timeout))

    async def copy_from_table(self, table_name: str, *, output: Any,
                              columns: Sequence[str] | None = None,
                              schema_name: str | None = None, timeout: Any = _DEFAULT,
                              **opts: Any) -> str:
        """See ``Client.copy_from_table``; ``output`` may also be a
        coroutine function or have an async ``write``."""
        self._t(timeout)
        sql = _pg_copy.from_table_sql(table_name, schema_name, columns, **opts)
        return await _pg_copy.acopy_from(self, sql, output)

    async def copy_from_query(self, query: str, *args: Any, output: Any,
                              timeout: Any = _DEFAULT, **opts: Any) -> str:
        """See ``Client.copy_from_query``."""
        t = self._t(timeout)
        lits: list[str | None] = []
        if args:
            if self._svc.statement_params(query) is None:
                await self._learn(query, t)
            names = await self.fetchval(_pgt.TYPE_NAMES, self._svc.statement_params(query) or [])
            lits = list(await self.fetchrow(_pgt.quote_sql(names or []), *args) or ())
        return await _pg_copy.acopy_from(self, _pg_copy.from_query_sql(query, lits, **opts),
                                         output)

    def listen(self, channel: str, *channels: str) -> AsyncListener:
        """``async for n in db.listen("jobs"):`` — see ``Client.listen``;
        the first step (or ``async with``, or ``await l.ready()``) waits
        until the connection is LISTENing."""
        return AsyncListener(self._dsn, (channel, *channels), self._listen_opts,
                             self._lease_timeout)

    async def close(self) -> None:
        """As ``Client.close``."""
        self._svc = _shared.CLOSED

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


