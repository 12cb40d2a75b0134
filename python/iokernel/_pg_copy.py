"""COPY for the PostgreSQL clients, with asyncpg's signatures:
``copy_records_to_table``, ``copy_to_table`` (from a path, a file-like
object, an iterable or async iterable of bytes), ``copy_from_table`` and
``copy_from_query`` (to a path, a file-like object or a callable).

Each COPY runs on a dedicated connection (or the transaction's own), never
on a shared one, so the queries of other callers are not held up while its
data streams. Records are encoded natively as query parameters are, for the
types an ``INSERT`` into those columns declares (described once per
service, ``_insert_types``), in the binary COPY format when every column's
type allows it (``PgService.copy_binary_ok``), else in the text format; the
column names come from the catalog first (one query).
COPY TO STDOUT data arrives in chunks as the server sends it and is handed
to the output as it comes. The asyncio forms never block the event loop
for long: records are encoded ``_BATCH`` at a time with the loop running
in between, and when the connection falls behind the data (more than
``CopyWriter.BACKLOG_MAX`` bytes queued) the writer waits in the loop,
not in the thread (``_caught_up``). ``iokernel.pg`` calls these with the client
(duck-typed: ``_svc``, ``_conn``, ``_bound``, ``_lease_timeout``).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import os
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from . import _aio, _errors, _pg_learn, _shared

__all__ = ["acopy_from", "acopy_records", "acopy_to_table", "copy_from", "copy_records",
           "copy_to_table", "from_query_sql", "from_table_sql"]

# Bytes read from a source per CopyData.
_READ = 256 * 1024
# Records encoded per batch by the asyncio forms (the loop runs between
# batches: a few milliseconds of encoding each).
_BATCH = 1000
# How often a writer whose connection is behind looks again (seconds).
_BEHIND_POLL = 0.002
_COLUMN_TYPES = """
SELECT a.attname, (CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END)::int
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def ident(name: str) -> str:
    if not isinstance(name, str) or not name or "\x00" in name:
        raise ValueError(f"a table or column name must be a non-empty str, not {name!r}")
    return '"' + name.replace('"', '""') + '"'


def _literal(s: str) -> str:
    return "'" + str(s).replace("'", "''") + "'"


def _table(table_name: str, schema_name: str | None) -> str:
    t = ident(table_name)
    return f"{ident(schema_name)}.{t}" if schema_name else t


def _cols(columns: Sequence[str] | None) -> str:
    if not columns:
        return ""
    if isinstance(columns, str):
        raise TypeError("columns must be a sequence of names, not one str")
    return " (" + ", ".join(ident(c) for c in columns) + ")"


def _opts(format: str | None = None, oids: Any = None, freeze: Any = None,
          delimiter: str | None = None, null: str | None = None, header: Any = None,
          quote: str | None = None, escape: str | None = None, force_quote: Any = None,
          force_not_null: Any = None, force_null: Any = None,
          encoding: str | None = None) -> str:
    """The ``( ... )`` option list of a COPY statement, as asyncpg builds it."""
    out = []
    if format is not None:
        if format.lower() not in ("text", "csv", "binary"):
            raise ValueError(f"format must be 'text', 'csv' or 'binary', not {format!r}")
        out.append(f"FORMAT {format.lower()}")
    if oids:
        raise ValueError("oids=True is not supported by PostgreSQL 12 and later")
    for flag, name in ((freeze, "FREEZE"), (header, "HEADER")):
        if flag is not None:
            out.append(f"{name} {'true' if flag else 'false'}")
    for text, name in ((delimiter, "DELIMITER"), (null, "NULL"), (quote, "QUOTE"),
                       (escape, "ESCAPE"), (encoding, "ENCODING")):
        if text is not None:
            out.append(f"{name} {_literal(text)}")
    for cols, name in ((force_quote, "FORCE_QUOTE"), (force_not_null, "FORCE_NOT_NULL"),
                       (force_null, "FORCE_NULL")):
        if cols is True:
            out.append(f"{name} *")
        elif cols:
            out.append(f"{name} ({', '.join(ident(c) for c in cols)})")
    return f" ({', '.join(out)})" if out else ""


def to_table_sql(table_name: str, schema_name: str | None, columns: Sequence[str] | None,
                 where: str | None, **opts: Any) -> str:
    sql = f"COPY {_table(table_name, schema_name)}{_cols(columns)} FROM STDIN{_opts(**opts)}"
    return f"{sql} WHERE {where}" if where else sql


def from_table_sql(table_name: str, schema_name: str | None, columns: Sequence[str] | None,
                   **opts: Any) -> str:
    return f"COPY {_table(table_name, schema_name)}{_cols(columns)} TO STDOUT{_opts(**opts)}"


def from_query_sql(query: str, literals: Sequence[str | None], **opts: Any) -> str:
    """``COPY (query) TO STDOUT``, with ``$n`` replaced by the quoted
    ``literals`` (COPY takes no parameters; the server quoted them)."""
    if literals:
        def sub(m: re.Match[str]) -> str:
            i = int(m.group(1)) - 1
            if not 0 <= i < len(literals):
                raise ValueError(f"${i + 1} has no argument ({len(literals)} given)")
            lit = literals[i]
            return lit if lit is not None else "NULL"
        query = re.sub(r"\$(\d+)\b", sub, query)
    return f"COPY ({query}) TO STDOUT{_opts(**opts)}"


def _pick(rows: list[Any], columns: Sequence[str] | None, table: str) -> list[str]:
    if not rows:
        raise ValueError(f"table {table} has no columns")
    types = {r[0]: r[1] for r in rows}
    names = list(columns) if columns else [r[0] for r in rows]
    missing = [c for c in names if c not in types]
    if missing:
        raise ValueError(f"table {table} has no column(s) {missing}")
    return names


def _insert_sql(table: str, names: Sequence[str]) -> str:
    """The INSERT whose parameter types are the COPY's column types (a
    domain, an enum, a composite ... as a parameter would be encoded)."""
    marks = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    return f"INSERT INTO {table}{_cols(names)} VALUES ({marks})"


def _sink(output: Any) -> tuple[Any, Any]:
    """(write, close) for a COPY's output: a path, a file-like object or a
    callable taking bytes (write may return an awaitable)."""
    if isinstance(output, (str, os.PathLike)):
        f = open(output, "wb")  # noqa: SIM115 - closed by the caller
        return f.write, f.close
    if hasattr(output, "write"):
        return output.write, None
    if callable(output):
        return output, None
    raise TypeError(f"output must be a path, a file-like object or a callable, not {output!r}")


def _chunks(source: Any) -> Iterator[bytes]:
    """The bytes of a (blocking) source: a path, a file-like object, or an
    iterable of bytes-like pieces."""
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as f:
            while chunk := f.read(_READ):
                yield chunk
    elif hasattr(source, "read"):
        while chunk := source.read(_READ):
            yield chunk.encode() if isinstance(chunk, str) else chunk
    elif isinstance(source, (bytes, bytearray, memoryview)):
        yield bytes(source)
    elif isinstance(source, Iterable):
        for chunk in source:
            yield chunk.encode() if isinstance(chunk, str) else chunk
    else:
        raise TypeError(f"source must be a path, a file-like object or an iterable of bytes, "
                        f"not {source!r}")


async def _achunks(source: Any) -> AsyncIterator[bytes]:
    """``_chunks``, also for an async iterable or a file-like object whose
    ``read`` is a coroutine."""
    if hasattr(source, "__aiter__"):
        async for chunk in source:
            yield chunk.encode() if isinstance(chunk, str) else chunk
    elif hasattr(source, "read") and inspect.iscoroutinefunction(source.read):
        while chunk := await source.read(_READ):
            yield chunk.encode() if isinstance(chunk, str) else chunk
    else:
        for chunk in _chunks(source):
            yield chunk
            await asyncio.sleep(0)  # let the loop run between big reads


# ------------------------------------------------------------------ blocking
@contextlib.contextmanager
def _conn(client: Any) -> Iterator[int]:
    if client._conn is not None:
        yield client._conn
        return
    c = client._svc.lease(client._lease_timeout)
    try:
        yield c
    finally:
        client._svc.release(c)


def copy_records(client: Any, table_name: str, records: Iterable[Any],
                 columns: Sequence[str] | None, schema_name: str | None,
                 timeout: float | None, where: str | None) -> str:
    table = _table(table_name, schema_name)
    with _conn(client) as c:
        bound = client._bound(c)
        names = _pick(bound.fetch(_COLUMN_TYPES, table), columns, table)
        types = _pg_learn.params(bound, _insert_sql(table, names), timeout)
        binary = client._svc.copy_binary_ok(types)
        sql = to_table_sql(table_name, schema_name, names, where,
                           format="binary" if binary else "text")
        w = client._svc.copy_in(sql, timeout, c)
        try:
            w.write_records(records, types, binary)
        except BaseException:
            w.abort()
            raise
        status: str = w.finish()
        return status


def copy_to_table(client: Any, sql: str, source: Any, timeout: float | None) -> str:
    with _conn(client) as c:
        w = client._svc.copy_in(sql, timeout, c)
        try:
            for chunk in _chunks(source):
                if not w.write(chunk):
                    break
        except BaseException:
            w.abort()
            raise
        status: str = w.finish()
        return status


def copy_from(client: Any, sql: str, output: Any) -> str:
    write, close = _sink(output)
    try:
        with _conn(client) as c:
            stream = client._svc.copy_out(sql, c)
            try:
                while True:
                    item = stream.next(None)
                    if isinstance(item, bytes):
                        write(item)
                    elif isinstance(item, str):
                        return item
            finally:
                stream.close()
    finally:
        if close is not None:
            close()


# ------------------------------------------------------------------ asyncio
@contextlib.asynccontextmanager
async def _aconn(client: Any) -> AsyncIterator[int]:
    if client._conn is not None:
        yield client._conn
        return
    c = await _shared.lease(client._svc, client._lease_timeout)
    try:
        yield c
    finally:
        client._svc.release(c)


async def _caught_up(w: Any, timeout: float | None) -> None:
    """Let the loop run; if the connection is more than ``BACKLOG_MAX``
    bytes behind, wait (in the loop) until it has caught up to half of
    that, as the blocking writer waits in its thread; ``TimeoutError`` if
    it stays behind past ``timeout``."""
    await asyncio.sleep(0)
    if w.backlog() <= w.BACKLOG_MAX:
        return
    loop = asyncio.get_running_loop()
    until = None if timeout is None else loop.time() + timeout
    while w.backlog() > w.BACKLOG_MAX // 2:
        if until is not None and loop.time() >= until:
            raise _errors.TimeoutError("COPY: the server did not take the data within the timeout")
        await asyncio.sleep(_BEHIND_POLL)


async def _acopy_in(client: Any, sql: str, timeout: float | None, c: int,
                    feed: Any) -> str:
    loop = asyncio.get_running_loop()
    w, call = client._svc.submit_copy_in(_aio.completer(loop), loop.create_future(),
                                         sql, timeout, c)
    try:
        await feed(w)
    except BaseException:
        w.abort()
        with contextlib.suppress(Exception):
            await call  # the server's answer to the abort
        raise
    w.finish()
    status: str = await call
    return status


async def acopy_records(client: Any, table_name: str, records: Any,
                        columns: Sequence[str] | None, schema_name: str | None,
                        timeout: float | None, where: str | None) -> str:
    table = _table(table_name, schema_name)
    async with _aconn(client) as c:
        bound = client._bound(c)
        names = _pick(await bound.fetch(_COLUMN_TYPES, table), columns, table)
        types = await _pg_learn.aparams(bound, _insert_sql(table, names), timeout)
        binary = client._svc.copy_binary_ok(types)
        sql = to_table_sql(table_name, schema_name, names, where,
                           format="binary" if binary else "text")

        async def feed(w: Any) -> None:
            done = 0
            async for batch in _batches(records):
                if w.write_records(batch, types, binary, done == 0, False, False,
                                   done) < len(batch):
                    return  # the request is gone: finish() says why
                done += len(batch)
                await _caught_up(w, timeout)
            w.write_records([], types, binary, done == 0, True, False, done)

        return await _acopy_in(client, sql, timeout, c, feed)


async def _batches(records: Any) -> AsyncIterator[list[Any]]:
    """``records`` (an iterable or async iterable) in lists of ``_BATCH``."""
    if hasattr(records, "__aiter__"):
        batch: list[Any] = []
        async for r in records:
            batch.append(r)
            if len(batch) >= _BATCH:
                yield batch
                batch = []
        if batch:
            yield batch
        return
    it = iter(records)
    while batch := list(itertools.islice(it, _BATCH)):
        yield batch


async def acopy_to_table(client: Any, sql: str, source: Any, timeout: float | None) -> str:
    async with _aconn(client) as c:
        async def feed(w: Any) -> None:
            async for chunk in _achunks(source):
                if not w.write(chunk, False):
                    break
                await _caught_up(w, timeout)

        return await _acopy_in(client, sql, timeout, c, feed)


async def acopy_from(client: Any, sql: str, output: Any) -> str:
    loop = asyncio.get_running_loop()
    write, close = _sink(output)
    try:
        async with _aconn(client) as c:
            stream = client._svc.copy_out(sql, c, _aio.completer(loop))
            try:
                while True:
                    try:
                        item = stream.try_next()
                    except StopIteration:
                        raise RuntimeError("COPY ended without a status") from None
                    if item is None:
                        fut = loop.create_future()
                        stream.arm(fut)
                        await fut
                    elif isinstance(item, bytes):
                        r = write(item)
                        if inspect.isawaitable(r):
                            await r
                    else:
                        return str(item)
            finally:
                stream.close()
    finally:
        if close is not None:
            close()
