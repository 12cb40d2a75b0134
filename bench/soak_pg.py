"""Soak test (bench/soak.py): the PostgreSQL load. PgOps is one worker's row
of soak_ctr and what it may hold; its op_* methods are the calls (fetch,
fetchrow, fetchval, execute, executemany batches, statements that fail on
purpose, statement-cache churn, transactions with savepoints, and from asyncio
wait_for, task.cancel() and cancelled transactions), each checking its reply
exactly. The menus weigh the ops for the asyncio tasks and the threads.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import deque
from typing import Any

from soak_model import (
    CANCELLED,
    HISTORY,
    INTENDED,
    MARGIN,
    PG_FAULT_STATES,
    PG_TIMEOUT,
    Op,
    RolledBack,
    Unexplained,
    Wrong,
    mark,
    unsettled,
)

import iokernel
from iokernel.pg import PostgresError

# -------------------------------------------------------------- PostgreSQL
COUNTER_SQL = "UPDATE soak_ctr SET v = v + 1 WHERE w = $1 RETURNING v"


class PgOps:
    """One worker's PostgreSQL row (soak_ctr.w = self.w) and what it may hold."""

    def __init__(self, name: str, w: int, rng: random.Random, is_async: bool) -> None:
        self.name = name
        self.w = w
        self.rng = rng
        self.is_async = is_async
        self.seq = 0
        self.ctr = 0
        self.pending: list[float] = []  # deadlines of counter updates that failed
        self.history: deque[Any] = deque(maxlen=HISTORY)

    @staticmethod
    def deadline(tx: bool = False) -> float:
        # a transaction: up to the lease (connect) and a timeout per statement
        return time.monotonic() + (12.0 if tx else PG_TIMEOUT) + MARGIN

    def check_ctr(self, n: Any, at: tuple[int, float], what: str, keep: bool = True) -> None:
        lo, hi = self.ctr + 1, self.ctr + 1 + len(self.pending)
        if not (type(n) is int and lo <= n <= hi):
            if keep and type(n) is int:  # count this once, not again on every later call
                self.ctr = n
            raise Wrong(f"{what} (w={self.w}) -> {n!r}; expected {lo}..{hi}, pending "
                        f"{self.pending}")
        if keep:
            self.ctr = n
            if self.pending:
                self.pending = unsettled(self.pending, at)

    def reraise_unless(self, e: PostgresError, sqlstate: str) -> None:
        """An intended error must be the one intended; a fault's is passed on."""
        if e.sqlstate == sqlstate:
            return
        if e.sqlstate in PG_FAULT_STATES:
            raise e
        raise Unexplained(e, sqlstate) from e

    # -- ops
    def op_add(self) -> Op:
        a, b = self.rng.randrange(-2**40, 2**40), self.rng.randrange(-2**40, 2**40)
        r = yield lambda c: c.fetchval("SELECT $1::int8 + $2::int8", a, b)
        if not (type(r) is int and r == a + b):
            raise Wrong(f"SELECT {a} + {b} -> {r!r}")

    def op_churn(self) -> Op:
        """More distinct statements than the client's statement cache (256)
        holds: prepared statements are evicted and prepared again while other
        callers use them."""
        k = self.rng.randrange(400)
        a = self.rng.randrange(2**31)
        r = yield lambda c: c.fetchval(f"SELECT $1::int8 + {k} AS churn{k}", a)
        if r != a + k:
            raise Wrong(f"SELECT {a} + {k} (statement {k} of 400) -> {r!r}")

    def op_add_timeout(self) -> Op:
        a = self.rng.randrange(2**31 - 1)
        t = self.rng.choice((0.05, 0.25, 2.0))
        r = yield lambda c: c.fetchval("SELECT $1::int4 - 1", a, timeout=t)
        if r != a - 1:
            raise Wrong(f"SELECT {a} - 1 (timeout={t}) -> {r!r}")

    def op_series(self) -> Op:
        self.seq += 1
        n, tag = self.rng.randint(1, 20), f"{self.name}:{self.seq}:"
        rows = yield lambda c: c.fetch(
            "SELECT g, $1::text || g::text AS s FROM generate_series(1, $2::int) AS g", tag, n)
        if not (isinstance(rows, list) and len(rows) == n
                and all(r[0] == i + 1 and r["s"] == f"{tag}{i + 1}" for i, r in enumerate(rows))):
            raise Wrong(f"generate_series({n}) tag {tag!r} -> {rows!r}")

    def op_row(self) -> Op:
        self.seq += 1
        t = f"{self.name}:{self.seq}"
        n = self.rng.randrange(-2**62, 2**62)
        f = self.rng.random() * 1e6
        b = self.rng.random() < 0.5
        y = self.rng.randbytes(self.rng.randrange(0, 40))
        r = yield lambda c: c.fetchrow(
            "SELECT $1::text AS t, $2::int8 AS n, $3::float8 AS f, $4::bool AS b, $5::bytea AS y",
            t, n, f, b, y)
        if not (r is not None and r["t"] == t and r[1] == n and r["f"] == f and r["b"] is b
                and r[4] == y):
            raise Wrong(f"fetchrow({t!r}, {n}, {f!r}, {b}, {y!r}) -> {r!r}")

    def op_counter(self) -> Op:
        f0 = mark("pg")
        try:
            n = yield lambda c: c.fetchval(COUNTER_SQL, self.w)
        except BaseException:
            self.pending.append(self.deadline())
            raise
        self.check_ctr(n, f0, "UPDATE ... RETURNING v")

    def op_touch(self) -> Op:
        st = yield lambda c: c.execute(
            "UPDATE soak_ctr SET touched = touched + 1 WHERE w = $1", self.w)
        if st != "UPDATE 1":
            raise Wrong(f"UPDATE touched (w={self.w}) -> {st!r}")

    def op_batch(self) -> Op:
        """executemany of a few rows, then DELETE them: all or nothing."""
        self.seq += 1
        # mostly a few rows; now and then enough for the described, binary path
        n = self.rng.randint(64, 200) if self.rng.random() < 0.05 else self.rng.randint(2, 8)
        seq = self.seq
        rows = [(self.w, seq, i, f"{self.name}:{seq}:{i}") for i in range(n)]
        dup = self.rng.random() < 0.25
        if dup:
            rows.insert(self.rng.randrange(1, n + 1), rows[0])
        failed = False
        try:
            yield lambda c: c.executemany(
                "INSERT INTO soak_log (w, seq, i, payload) VALUES ($1, $2, $3, $4)", rows)
        except PostgresError as e:
            if not dup:
                if e.sqlstate in PG_FAULT_STATES:
                    raise
                raise Unexplained(e) from e
            self.reraise_unless(e, "23505")
            failed = True
        if dup and not failed:
            raise Wrong(f"executemany with a duplicate key (w={self.w}, seq={seq}) succeeded")
        st = yield lambda c: c.execute(
            "DELETE FROM soak_log WHERE w = $1 AND seq = $2", self.w, seq)
        want = "DELETE 0" if failed else f"DELETE {n}"
        if st != want:
            raise Wrong(f"after executemany of {len(rows)} rows (duplicate: {dup}): {st!r}, "
                        f"expected {want!r}")
        return (INTENDED, "PostgresError 23505") if failed else None

    def op_error(self) -> Op:
        """A call that must fail with one PostgresError."""
        want, call = self.rng.choice((
            ("22012", lambda c: c.fetchval("SELECT $1::int / $2::int", 1, 0)),
            ("42601", lambda c: c.execute("SELEC 1")),
            ("23505", lambda c: c.execute("INSERT INTO soak_ctr (w) VALUES ($1)", self.w)),
            ("42P01", lambda c: c.fetch("SELECT * FROM soak_no_such_table")),
        ))
        try:
            r = yield call
        except PostgresError as e:
            self.reraise_unless(e, want)
            return INTENDED, f"PostgresError {want}"
        raise Wrong(f"a statement that must fail ({want}) -> {r!r}")

    def op_tx(self) -> Op:
        f0 = mark("pg")
        rollback = self.rng.random() < 0.3
        nested = self.rng.random() < 0.5
        body = self._tx_async if self.is_async else self._tx_sync
        try:
            n = yield lambda c: body(c, rollback, nested)
        except RolledBack as rb:
            self.check_ctr(rb.n, f0, "UPDATE in a rolled-back transaction", keep=False)
            return None
        except BaseException:
            self.pending.append(self.deadline(tx=True))
            raise
        self.check_ctr(n, f0, "UPDATE in a committed transaction")

    def _in_tx_checks(self, n: Any, m: Any, where: str) -> None:
        if n != m:
            raise Wrong(f"{where}: UPDATE RETURNING {n!r} but SELECT {m!r} (w={self.w})")

    async def _tx_async(self, c: Any, rollback: bool, nested: bool) -> Any:
        async with c.transaction() as tx:
            n = await tx.fetchval(COUNTER_SQL, self.w)
            m = await tx.fetchval("SELECT v FROM soak_ctr WHERE w = $1", self.w)
            self._in_tx_checks(n, m, "transaction")
            if nested:
                try:
                    async with tx.transaction():
                        await tx.execute("UPDATE soak_ctr SET v = v + 1000 WHERE w = $1", self.w)
                        r = await tx.fetchval("SELECT $1::int / $2::int", 1, 0)
                    raise Wrong(f"division by zero in a savepoint -> {r!r}")
                except PostgresError as e:
                    self.reraise_unless(e, "22012")
                m = await tx.fetchval("SELECT v FROM soak_ctr WHERE w = $1", self.w)
                self._in_tx_checks(n, m, "after ROLLBACK TO SAVEPOINT")
            if rollback:
                raise RolledBack(n)
        return n

    def _tx_sync(self, c: Any, rollback: bool, nested: bool) -> Any:
        with c.transaction() as tx:
            n = tx.fetchval(COUNTER_SQL, self.w)
            m = tx.fetchval("SELECT v FROM soak_ctr WHERE w = $1", self.w)
            self._in_tx_checks(n, m, "transaction")
            if nested:
                try:
                    with tx.transaction():
                        tx.execute("UPDATE soak_ctr SET v = v + 1000 WHERE w = $1", self.w)
                        r = tx.fetchval("SELECT $1::int / $2::int", 1, 0)
                    raise Wrong(f"division by zero in a savepoint -> {r!r}")
                except PostgresError as e:
                    self.reraise_unless(e, "22012")
                m = tx.fetchval("SELECT v FROM soak_ctr WHERE w = $1", self.w)
                self._in_tx_checks(n, m, "after ROLLBACK TO SAVEPOINT")
            if rollback:
                raise RolledBack(n)
        return n

    # -- asyncio only: our own cancellations
    def op_wait_for(self) -> Op:
        a = self.rng.randrange(2**31 - 1)
        limit = self.rng.choice((0.00002, 0.0001, 0.0005, 0.002))
        try:
            r = yield lambda c: asyncio.wait_for(c.fetchval("SELECT $1::int4 - 1", a), limit)
        except TimeoutError as e:
            if isinstance(e, iokernel.Error):
                raise
            return CANCELLED
        if r != a - 1:
            raise Wrong(f"SELECT {a} - 1 (wait_for) -> {r!r}")

    def op_cancel(self) -> Op:
        f0 = mark("pg")
        delay = self.rng.choice((0, 0, 0.0005, 0.002))

        async def go(c: Any) -> Any:
            task = asyncio.create_task(c.fetchval(COUNTER_SQL, self.w))
            await asyncio.sleep(delay)
            task.cancel()
            return await task

        try:
            n = yield go
        except asyncio.CancelledError:
            self.pending.append(self.deadline())
            return CANCELLED
        except BaseException:
            self.pending.append(self.deadline())
            raise
        self.check_ctr(n, f0, "UPDATE (task.cancel came too late)")

    def op_tx_cancel(self) -> Op:
        """A transaction task cancelled at a random point: rolled back, or
        committed if the cancel came too late; its connection is released."""
        f0 = mark("pg")
        delay = self.rng.choice((0, 0.001, 0.003, 0.01))

        async def go(c: Any) -> Any:
            task = asyncio.create_task(self._tx_async(c, False, False))
            await asyncio.sleep(delay)
            task.cancel()
            return await task

        try:
            n = yield go
        except asyncio.CancelledError:
            self.pending.append(self.deadline(tx=True))
            return CANCELLED
        except BaseException:
            self.pending.append(self.deadline(tx=True))
            raise
        self.check_ctr(n, f0, "transaction (task.cancel came too late)")

    def op_slow(self) -> Op:
        try:
            r = yield lambda c: c.fetchval("SELECT pg_sleep(0.5)", timeout=0.05)
        except iokernel.TimeoutError:
            return INTENDED, "TimeoutError"
        raise Wrong(f"pg_sleep(0.5) with timeout=0.05 -> {r!r}; expected a TimeoutError")


PG_ASYNC_MENU = {"add": 24, "churn": 6, "series": 10, "row": 10, "counter": 12, "touch": 8, "batch": 6,
                 "error": 6, "tx": 1, "wait_for": 2, "cancel": 2, "tx_cancel": 0.5}
PG_SYNC_MENU = {"add": 22, "churn": 6, "add_timeout": 3, "series": 10, "row": 10, "counter": 12,
                "touch": 8, "batch": 6, "error": 6, "tx": 1}
