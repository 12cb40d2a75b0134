"""The query methods of the PostgreSQL clients, written once for the
blocking and the asyncio client (``pg._Base``): each returns what the
client's ``_q``/``_many`` return (a value for ``Client``, an awaitable for
``AsyncClient``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from . import _options

# Result shapes understood by the native layer.
_ROWS, _ROW, _VALUE, _STATUS = 0, 1, 2, 3
_DEFAULT = object()


def _idem(idempotent: Any) -> bool:
    return _options.flag("idempotent", idempotent)


class QueryMethods:
    """fetch, fetchrow, fetchval, execute, executemany over ``_q``/``_many``."""

    def _q(self, shape: int, sql: str, args: tuple[Any, ...], column: int = 0,
           timeout: Any = _DEFAULT, simple: bool = False, idem: bool = False) -> Any:
        raise NotImplementedError

    def _many(self, sql: str, rows: Iterable[Any], timeout: Any) -> Any:
        raise NotImplementedError

    # Every query method takes ``timeout=`` (seconds for this call, None: no
    # limit) and ``idempotent=`` (True: running it twice is harmless, so if
    # its connection is lost after it was sent it is sent again, at most 3
    # times, instead of failing with "outcome unknown"; as the client's
    # ``idempotent=True`` does for every query). Never inside a transaction.

    def fetch(self, sql: str, *args: Any, timeout: Any = _DEFAULT,
              idempotent: bool = False) -> Any:
        """All rows, as a list of ``Record``."""
        return self._q(_ROWS, sql, args, timeout=timeout, idem=_idem(idempotent))

    def fetchrow(self, sql: str, *args: Any, timeout: Any = _DEFAULT,
                 idempotent: bool = False) -> Any:
        """The first row (a ``Record``), or None."""
        return self._q(_ROW, sql, args, timeout=timeout, idem=_idem(idempotent))

    def fetchval(self, sql: str, *args: Any, column: int = 0, timeout: Any = _DEFAULT,
                 idempotent: bool = False) -> Any:
        """One value of the first row (None if there is no row)."""
        return self._q(_VALUE, sql, args, column=column, timeout=timeout,
                       idem=_idem(idempotent))

    def execute(self, sql: str, *args: Any, timeout: Any = _DEFAULT,
                idempotent: bool = False) -> Any:
        """Run a statement; its command status ("INSERT 0 1"). Without
        arguments the simple query protocol is used, so ``sql`` may hold
        several statements (the status is the last one's)."""
        return self._q(_STATUS, sql, args, timeout=timeout, simple=not args,
                       idem=_idem(idempotent))

    def executemany(self, sql: str, args: Iterable[Any], *, timeout: Any = _DEFAULT) -> Any:
        """Run ``sql`` once per parameter tuple, pipelined in one round trip
        and one implicit transaction (all rows or none). ``args`` may be any
        iterable, even a generator: rows stream to the server while later
        ones are still being encoded. A row that cannot be encoded raises
        (naming the row) and nothing of the batch is kept; inside
        ``transaction()`` that aborts the transaction, like a failed
        statement."""
        return self._many(sql, args, timeout)

