"""Soak: a million mixed Redis and PostgreSQL calls through iokernel while the
servers are killed, restarted, stopped and their connections cut; RSS, open
fds and threads at each quarter, every outcome checked.

    make soak                          # 1,000,000 calls at 5,000/s: ~4 min
    SOAK_CALLS=20000 make soak         # smoke run, ~45 s (one round of every fault)
    .venv/bin/python bench/soak.py --calls 20000 --seed 7 -v   # -v: each fault, error samples

What runs (one process, the way a service would use iokernel):

* a real redis-server and a real PostgreSQL, started here on loopback
  (tests/servers.py), so the faults below can be done to them;
* Redis: 48 asyncio tasks on one ``redis.AsyncClient`` and 3 threads on one
  ``redis.Client`` (all on the one shared connection): GET, SET, INCR,
  HGETALL, pipelines, MULTI/EXEC pipelines, calls that fail on purpose
  (INCRBY with a non-integer, an unknown command, a pipeline with a bad
  command, with and without ``raise_on_error``), per-call ``timeout=``, and
  from asyncio ``asyncio.wait_for`` with a timeout too short on purpose and
  ``task.cancel()``;
* PostgreSQL: 24 asyncio tasks on one ``pg.AsyncClient`` and 2 threads on one
  ``pg.Client`` (sharing the two pipelined connections): fetch, fetchrow,
  fetchval, execute, executemany batches (mostly 2-8 rows, now and then
  64-200; some with a duplicate key on purpose: 23505 and nothing kept),
  division by zero, syntax errors, a missing table, 400 distinct statements
  (more than the statement cache's 256), transactions (some rolled back on
  purpose, some with a savepoint that fails inside), cancellations as above
  (also of whole transactions), and one task that runs ``pg_sleep(0.5)``
  with ``timeout=0.05`` every 2 s;
* faults, in rounds, from 5 % to 70 % of the calls: redis-server SIGKILLed and
  restarted on its port; redis-server down for 1 s; redis-server stopped
  (SIGSTOP) for 1.5 s; every Redis connection killed (CLIENT KILL);
  ``pg_terminate_backend`` of this process's backends from a separate admin
  connection (psycopg); PostgreSQL stopped (SIGSTOP, postmaster and backends)
  for 1.5 s; PostgreSQL restarted (fast shutdown). At least one full round
  runs, however short the run (calls wait at 70 % until it has); the last
  30 % run without faults. Client timeouts are 1 s, so stalls time out.

Calls are paced (SOAK_RATE, default 5,000/s; slower for short runs, so a
round of faults fits in the fault window): that is how a service sees load,
it keeps callers failing fast during an outage from swamping the counts, and
it makes the run time predictable. A call is one client method the caller
awaits or blocks on (a pipeline's ``execute()`` is one call; so is a
transaction block, or an executemany with the DELETE that checks it).

Every outcome must be the right value or a typed iokernel error (an
``iokernel.Error`` subclass); our own cancellations are counted apart.
Values are checked exactly: every value written is unique to its writer and
call, every counter belongs to one worker, and the checker knows which writes
may or may not have landed (a call that failed, timed out or was cancelled may
still run until its timeout has passed, or until a stopped server resumes; a
redis-server killed without persistence forgets everything). So a reply
given to the wrong caller, a lost or doubled write, a batch that is not
atomic, or a transaction that is not rolled back is a wrong value; each is
printed with the worker's last 12 calls. A server error on a call that could
not cause it (a ResponseError on a GET, a 26000 on a statement that never
named one) is counted as unexplained.

At each quarter: calls, elapsed time, RSS, open fds, threads (native and
Python), faults started in the quarter, that quarter's errors by type and
intended errors, our cancellations, wrong values, untyped and unexplained
errors, the slowest call so far. Verdict (exit status 1 if any fails): all
calls done within the time limit, no minute without progress, no call far
past every timeout, zero wrong values, zero untyped errors, zero unexplained
server errors, RSS growth from the first quarter to the last under 20 MB,
the fd and thread counts back to their baseline (after warm-up, before any
fault) once the calls are over, every fault kind injected.

Environment: SOAK_CALLS (default 1000000), SOAK_RATE (calls/s, default 5000,
0: as fast as possible), SOAK_TIME_LIMIT (seconds, default 1200), SOAK_SEED
(default 1). Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import faulthandler
import itertools
import os
import random
import sys
import threading
import time
import traceback
from collections import Counter, deque
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import iokernel
from iokernel import pg, redis
from iokernel.pg import PostgresError
from iokernel.redis import ResponseError, WatchError
from tests.servers import PostgresServer, RedisServer

try:  # the admin connection that terminates backends (requirements-dev.txt)
    import psycopg
except ImportError:  # pragma: no cover - then psql does it (tests/servers.py)
    psycopg = None

# ----------------------------------------------------------------- settings
REDIS_ASYNC_TASKS = 48
REDIS_THREADS = 3
PG_ASYNC_TASKS = 24
PG_THREADS = 2
REDIS_TIMEOUT = 1.0  # client timeouts: a 1.5 s stall makes callers time out
PG_TIMEOUT = 1.0
FAULTS_FROM, FAULTS_UNTIL = 0.05, 0.70  # fractions of the calls
STALL_SECONDS = 1.5
OUTAGE_SECONDS = 1.0
PAUSE_BETWEEN_FAULTS = 1.0
GRACE_AFTER_FAULT = 0.5  # a fault's window stays open this long after it ends
ROUND_SECONDS = 22.0  # about how long one round of the 7 faults takes
RSS_GROWTH_LIMIT_MB = 20.0
NO_PROGRESS_LIMIT = 60.0  # seconds without a finished call: a hang
SLOW_CALL_LIMIT = 15.0  # seconds: longer than any timeout here allows
SETTLE_LIMIT = 15.0  # seconds for fds/threads to come back after the calls
APP_NAME = "soak"
ADMIN_APP_NAME = "soak-admin"

# Errors a fault may legitimately cause on any PostgreSQL call: terminated or
# shut-down backends, the server starting, the kernel's cancel of an overdue
# statement, connection failures.
PG_FAULT_STATES = {"57P01", "57P02", "57P03", "57014", "08000", "08001", "08003", "08006"}

INTENDED = "intended"
CANCELLED = "cancelled"


class Wrong(Exception):
    """A reply that is not the right value (raised by the checks)."""


class RolledBack(Exception):
    """Raised inside a transaction block on purpose: it must roll back."""

    def __init__(self, n: int) -> None:
        super().__init__(n)
        self.n = n


class Unexplained(Exception):
    """A server error on a call that could not have caused it."""

    def __init__(self, err: BaseException, expected: str = "") -> None:
        super().__init__(f"{err_key(err)}: {err}")
        self.err = err
        self.expected = expected  # the error the call should have had, if any


def err_key(e: BaseException) -> str:
    if isinstance(e, PostgresError):
        return f"PostgresError {e.sqlstate}"
    return type(e).__name__


# ------------------------------------------------------------ fault windows
class Gens:
    """Fault generations, changed only by the fault thread: odd while a fault
    (and its grace period) is in progress. A check compares the generation
    read before a write with the one read after a later read: equal and even
    means no fault happened in between."""

    redis_loss = 0  # redis-server restarted: its data is gone
    redis_fault = 0  # any Redis fault
    pg_fault = 0  # any PostgreSQL fault


G = Gens()


def lost(then: int, now: int) -> bool:
    """Data written at generation `then` may be gone at `now`."""
    return then != now or then % 2 == 1 or now % 2 == 1


def mark(kind: str) -> tuple[int, float]:
    """When an op starts: its service's fault generation and the clock."""
    return (G.redis_fault if kind == "redis" else G.pg_fault), time.monotonic()


def unsettled(deadlines: list[Any], at: tuple[int, float], key: Any = None) -> list[Any]:
    """The uncertain writes (a call that failed, timed out or was cancelled)
    that may still land after `at`. One may land until its deadline (its
    request is sent even if the caller gave up, and runs unless the kernel
    dropped it at its timeout), or until a fault in progress is over (a
    stopped server runs what it had received when it resumes). Pruned only
    after a read has seen the state, since it may have landed just before."""
    gen, t = at
    if gen % 2:
        return deadlines
    return [d for d in deadlines if (key(d) if key else d) >= t][-STALE_CAP:]


STALE_CAP = 64
MARGIN = 2.0  # seconds past a call's timeout before the kernel has surely dropped it


# ------------------------------------------------------------------- tallies
class Tally:
    """One worker's counts; only that worker writes them."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.calls = 0
        self.ok = 0
        self.errors: Counter[str] = Counter()
        self.intended: Counter[str] = Counter()
        self.cancelled = 0
        self.wrong = 0
        self.untyped = 0
        self.unexplained = 0
        self.by_op: Counter[str] = Counter()
        self.slowest = 0.0
        self.slowest_op = ""


PROBLEMS: dict[str, list[str]] = {}  # the first few of each kind, in full
PROBLEMS_LOCK = threading.Lock()
SAMPLES: dict[str, str] = {}  # one message per error type
UNEXPLAINED: Counter[str] = Counter()  # by error, what was expected, and op


def note_problem(kind: str, text: str) -> None:
    with PROBLEMS_LOCK:
        seen = PROBLEMS.setdefault(kind, [])
        if len(seen) < 8:
            seen.append(text)


def unexplained(e: BaseException) -> bool:
    """A server error that escaped an op: the intended ones are caught inside
    the ops, so only a fault's may be left (none for Redis)."""
    if isinstance(e, (ResponseError, WatchError)):
        return True
    return isinstance(e, PostgresError) and e.sqlstate not in PG_FAULT_STATES


def settle_outcome(t: Tally, op: str, started: float, outcome: Any) -> None:
    took = time.monotonic() - started
    if took > t.slowest:
        t.slowest, t.slowest_op = took, f"{t.kind}.{op}"
    if outcome is None:
        t.ok += 1
    elif outcome == CANCELLED:
        t.cancelled += 1
    elif isinstance(outcome, tuple) and outcome[0] == INTENDED:
        t.intended[outcome[1]] += 1
    else:
        t.ok += 1
    t.calls += 1


def gens_now() -> tuple[int, int, int, int]:
    return G.redis_loss, G.redis_fault, G.pg_fault, int(time.monotonic() * 1000)


def fmt_history(history: Any) -> str:
    """A worker's last calls: when (ms, monotonic), what, how it ended, and
    the fault generations before and after (redis loss/fault, pg fault)."""
    return "".join(
        f"\n      {g0[3]}..{g1[3]} ms  {name:<12} {result:<34} gens {g0[:3]} -> {g1[:3]}"
        for name, result, g0, g1 in history
    )


def settle_exception(t: Tally, op: str, started: float, e: BaseException,
                     history: Any = ()) -> None:
    took = time.monotonic() - started
    if took > t.slowest:
        t.slowest, t.slowest_op = took, f"{t.kind}.{op}"
    if isinstance(e, Wrong):
        t.wrong += 1
        note_problem("wrong value", f"WRONG VALUE in {t.kind}.{op}: {e}\n    "
                                    f"this worker's calls before it:{fmt_history(history)}")
    elif isinstance(e, Unexplained) or unexplained(e):
        t.unexplained += 1
        cause = e.err if isinstance(e, Unexplained) else e
        instead = f" instead of {e.expected}" if isinstance(e, Unexplained) and e.expected else ""
        UNEXPLAINED[f"{err_key(cause)}{instead} in {t.kind.split('.')[0]}.{op}"] += 1
        note_problem("unexplained", f"UNEXPLAINED SERVER ERROR in {t.kind}.{op}: {err_key(e)}: {e}")
    elif isinstance(e, iokernel.Error):
        key = err_key(e)
        t.errors[key] += 1
        if key not in SAMPLES:
            SAMPLES[key] = f"{t.kind}.{op}: {e}"[:300]
    else:
        t.untyped += 1
        tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
        note_problem("untyped", f"UNTYPED {type(e).__module__}.{type(e).__qualname__} in {t.kind}.{op}: "
                     f"{e!r}\n{tb}")
    t.calls += 1


# --------------------------------------------------------- driving the ops
# An op is a generator: it yields thunks (client -> result, or awaitable of
# the result for an asyncio client), gets their results (or their exceptions
# thrown in), checks them and returns an outcome (None, CANCELLED or
# (INTENDED, error key)). One op serves both the blocking and asyncio clients.
Op = Generator[Callable[[Any], Any], Any, Any]


def drive_sync(op: Op, client: Any) -> Any:
    thunk = next(op)
    while True:
        try:
            result = thunk(client)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            try:
                thunk = op.throw(e)
            except StopIteration as s:
                return s.value
        else:
            try:
                thunk = op.send(result)
            except StopIteration as s:
                return s.value


async def drive_async(op: Op, client: Any) -> Any:
    thunk = next(op)
    while True:
        try:
            result = await thunk(client)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:
            try:
                thunk = op.throw(e)
            except StopIteration as s:
                return s.value
        else:
            try:
                thunk = op.send(result)
            except StopIteration as s:
                return s.value


def short(outcome: Any) -> str:
    if outcome is None:
        return "ok"
    if isinstance(outcome, BaseException):
        return ("WRONG" if isinstance(outcome, Wrong) else err_key(outcome))[:34]
    if isinstance(outcome, tuple):
        return f"intended {outcome[1]}"
    return str(outcome)


HISTORY = 12


# ------------------------------------------------------------------- Redis
class RedisOps:
    """One worker's Redis keys and what their values may be."""

    def __init__(self, name: str, rng: random.Random, is_async: bool) -> None:
        p = f"soak:{name}"
        self.name = name
        self.rng = rng
        self.is_async = is_async
        self.k = f"{p}:k".encode()  # string: SET/GET, values unique per call
        self.c = f"{p}:c".encode()  # counter: INCR
        self.h = f"{p}:h".encode()  # hash: written once (again after a restart)
        self.s = f"{p}:s".encode()  # a string that INCR fails on
        self.seq = 0
        self.vals: set[bytes | None] = {None}
        self.vals_gen = G.redis_loss
        self.stale: list[tuple[bytes, float]] = []  # (value, deadline) of failed SETs
        self.ctr = 0
        self.ctr_gen = G.redis_loss
        self.pending: list[float] = []  # deadlines of failed INCRs
        self.hmap = {b"w": name.encode(), b"n": b"1", b"t": b"two"}
        self.h_gen: int | None = None
        self.history: deque[Any] = deque(maxlen=HISTORY)

    def new_value(self) -> bytes:
        self.seq += 1
        return b"%s:%d" % (self.k, self.seq)

    @staticmethod
    def deadline() -> float:
        return time.monotonic() + REDIS_TIMEOUT + MARGIN

    def set_failed(self, v: bytes) -> None:
        self.stale.append((v, self.deadline()))

    def set_done(self, v: bytes, gen: int, at: tuple[int, float]) -> None:
        """A SET succeeded: older failed SETs either landed before it or never will."""
        self.vals, self.vals_gen = {v}, gen
        if self.stale:
            self.stale = unsettled(self.stale, at, key=lambda e: e[1])

    def check_get(self, x: Any, gen_before: int, what: str) -> None:
        g1 = G.redis_loss
        ok = (x is None or type(x) is bytes) and (
            x in self.vals or any(x == v for v, _ in self.stale)
            or (x is None and lost(self.vals_gen, g1))
        )
        if not ok:
            raise Wrong(f"{what} {self.k!r} -> {x!r}; expected one of {sorted(map(repr, self.vals))}"
                        f" or a failed write {[v for v, _ in self.stale][-3:]}")
        self.vals, self.vals_gen = {x}, gen_before

    def check_incr(self, n: Any, gen_before: int, at: tuple[int, float], what: str) -> None:
        hi = self.ctr + 1 + len(self.pending)
        lo = 1 if lost(self.ctr_gen, G.redis_loss) else self.ctr + 1
        if not (type(n) is int and lo <= n <= hi):
            if type(n) is int:  # count this once, not again on every later call
                self.ctr, self.ctr_gen = n, gen_before
            raise Wrong(f"{what} {self.c!r} -> {n!r}; expected {lo}..{hi}, pending "
                        f"{self.pending}")
        self.ctr, self.ctr_gen = n, gen_before
        if self.pending:
            self.pending = unsettled(self.pending, at)

    def check_hash(self, d: Any, what: str) -> bool:
        """True if the hash is there; False if it is (rightly) gone."""
        if d == self.hmap:
            return True
        gone = self.h_gen is None or lost(self.h_gen, G.redis_loss)
        if not (d == {} and gone):
            raise Wrong(f"{what} {self.h!r} -> {d!r}; expected {self.hmap!r}"
                        + (" or {}" if gone else ""))
        return False

    # -- ops
    def op_get(self) -> Op:
        g0 = G.redis_loss
        x = yield lambda c: c.get(self.k)
        self.check_get(x, g0, "GET")

    def op_get_timeout(self) -> Op:
        # execute() with a per-call timeout instead of the client's
        g0 = G.redis_loss
        x = yield lambda c: c.execute("GET", self.k, timeout=self.rng.choice((0.05, 0.25, 2.0)))
        self.check_get(x, g0, "GET (timeout=)")

    def op_set(self) -> Op:
        v = self.new_value()
        g0, f0 = G.redis_loss, mark("redis")
        try:
            x = yield lambda c: c.set(self.k, v)
        except BaseException:
            self.set_failed(v)
            raise
        if x is not True:
            self.set_failed(v)
            raise Wrong(f"SET {self.k!r} -> {x!r}; expected True")
        self.set_done(v, g0, f0)

    def op_incr(self) -> Op:
        g0, f0 = G.redis_loss, mark("redis")
        try:
            n = yield lambda c: c.incr(self.c)
        except BaseException:
            self.pending.append(self.deadline())
            raise
        self.check_incr(n, g0, f0, "INCR")

    def op_hgetall(self) -> Op:
        d = yield lambda c: c.hgetall(self.h)
        if not self.check_hash(d, "HGETALL"):
            g0 = G.redis_loss
            n = yield lambda c: c.hset(self.h, mapping=self.hmap)
            if not (type(n) is int and 0 <= n <= len(self.hmap)):
                raise Wrong(f"HSET -> {n!r}")
            self.h_gen = g0

    def op_pipeline(self) -> Op:
        v = self.new_value()
        g0, f0 = G.redis_loss, mark("redis")
        try:
            res = yield lambda c: (
                c.pipeline().set(self.k, v).get(self.k).incr(self.c).hgetall(self.h).execute()
            )
        except BaseException:
            self.set_failed(v)
            self.pending.append(self.deadline())
            raise
        if not (isinstance(res, list) and len(res) == 4):
            raise Wrong(f"pipeline -> {res!r}")
        if not (res[0] is True and res[1] == v):
            raise Wrong(f"pipeline SET+GET {self.k!r} -> {res[:2]!r}; expected [True, {v!r}]")
        self.set_done(v, g0, f0)
        self.check_incr(res[2], g0, f0, "pipeline INCR")
        self.check_hash(res[3], "pipeline HGETALL")

    def op_multi(self) -> Op:
        g0, f0 = G.redis_loss, mark("redis")
        try:
            res = yield lambda c: (
                c.pipeline(transaction=True).incr(self.c).incr(self.c).get(self.k).execute()
            )
        except BaseException:
            self.pending += [self.deadline()] * 2
            raise
        if not (isinstance(res, list) and len(res) == 3):
            raise Wrong(f"MULTI/EXEC -> {res!r}")
        self.check_incr(res[0], g0, f0, "MULTI INCR")
        if res[1] != res[0] + 1:
            raise Wrong(f"MULTI INCR INCR {self.c!r} -> {res[:2]!r}: not consecutive")
        self.ctr = res[1]
        self.check_get(res[2], g0, "MULTI GET")

    def op_bad(self) -> Op:
        """A call that must fail with a ResponseError (and only that one)."""
        kind = self.rng.randrange(4)
        if kind == 0:
            try:
                x = yield lambda c: c.execute("INCRBY", self.s, "not-a-number")
            except ResponseError as e:
                if "not an integer" not in str(e):
                    raise Wrong(f"INCRBY x: unexpected error text {e}") from e
                return INTENDED, "ResponseError"
            raise Wrong(f"INCRBY with a non-integer -> {x!r}; expected a ResponseError")
        if kind == 1:
            try:
                x = yield lambda c: c.execute("SOAK-NO-SUCH-COMMAND", self.k)
            except ResponseError as e:
                if "unknown command" not in str(e).lower():
                    raise Wrong(f"unknown command: text {e}") from e
                return INTENDED, "ResponseError"
            raise Wrong(f"an unknown command -> {x!r}; expected a ResponseError")
        g0 = G.redis_loss
        if kind == 2:  # errors in place
            res = yield lambda c: (
                c.pipeline().set(self.s, b"text").incr(self.s).get(self.k)
                .execute(raise_on_error=False)
            )
            if not (isinstance(res, list) and len(res) == 3 and res[0] is True
                    and isinstance(res[1], ResponseError) and "not an integer" in str(res[1])):
                raise Wrong(f"pipeline SET/INCR(bad)/GET, raise_on_error=False -> {res!r}")
            self.check_get(res[2], g0, "pipeline GET after an error")
            return INTENDED, "ResponseError (in place)"
        try:
            res = yield lambda c: (
                c.pipeline().set(self.s, b"text").incr(self.s).get(self.k).execute()
            )
        except ResponseError as e:
            # incr() is sent as INCRBY key 1
            if not ("#2 (INCR" in str(e) and "not an integer" in str(e)):
                raise Wrong(f"pipeline with a bad INCR: unexpected error text {e}") from e
            return INTENDED, "ResponseError"
        raise Wrong(f"pipeline with a bad INCR -> {res!r}; expected a ResponseError")

    # -- asyncio only: our own cancellations
    def op_wait_for(self) -> Op:
        g0 = G.redis_loss
        limit = self.rng.choice((0.00002, 0.0001, 0.0005, 0.002))
        try:
            x = yield lambda c: asyncio.wait_for(c.get(self.k), limit)
        except TimeoutError as e:
            if isinstance(e, iokernel.Error):
                raise
            return CANCELLED
        self.check_get(x, g0, "GET (wait_for)")

    def op_cancel(self) -> Op:
        g0, f0 = G.redis_loss, mark("redis")
        delay = self.rng.choice((0, 0, 0.0005, 0.002))

        async def go(c: Any) -> Any:
            task = asyncio.create_task(c.incr(self.c))
            await asyncio.sleep(delay)
            task.cancel()
            return await task

        try:
            n = yield go
        except asyncio.CancelledError:
            self.pending.append(self.deadline())  # it may have run
            return CANCELLED
        except BaseException:
            self.pending.append(self.deadline())
            raise
        self.check_incr(n, g0, f0, "INCR (task.cancel came too late)")


REDIS_ASYNC_MENU = {"get": 30, "set": 14, "incr": 12, "pipeline": 10, "hgetall": 6,
                    "multi": 4, "bad": 5, "wait_for": 2, "cancel": 2}
REDIS_SYNC_MENU = {"get": 28, "get_timeout": 3, "set": 14, "incr": 12, "pipeline": 10,
                   "hgetall": 6, "multi": 4, "bad": 5}


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


# ------------------------------------------------------------------ the run
def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_table() -> dict[int, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
    return out


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def fmt_counter(c: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "none"


class Soak:
    def __init__(self, calls: int, rate: float, time_limit: float, seed: int,
                 verbose: bool) -> None:
        self.total = calls
        self.rate = rate
        self.gate_shift = 0.0
        self.time_limit = time_limit
        self.seed = seed
        self.verbose = verbose
        self.tickets = itertools.count()
        self.gate = int(calls * FAULTS_UNTIL)
        self.stop = threading.Event()
        self.faults_over = threading.Event()
        self.tallies: list[Tally] = []
        self.fault_counts: Counter[str] = Counter()
        self.fault_log: list[str] = []
        self.fault_errors: list[str] = []
        self.t0 = 0.0
        self.redis_srv: RedisServer | None = None
        self.pg_srv: PostgresServer | None = None

    # -- tickets: exactly `total` calls, none past the gate until the faults are over
    def _ticket(self) -> int | None:
        if self.stop.is_set():
            return None
        n = next(self.tickets)
        return n if n < self.total else None

    def _due(self, n: int) -> float:
        """Seconds until call `n` may start: the pace, and past the gate
        shifted by however long the faults ran past the gate's time."""
        if not self.rate:
            return 0.0
        due = self.t0 + n / self.rate + (self.gate_shift if n >= self.gate else 0.0)
        return due - time.monotonic()

    def _at_gate(self, n: int) -> bool:
        return n >= self.gate and not self.faults_over.is_set()

    def claim_sync(self) -> bool:
        n = self._ticket()
        if n is None:
            return False
        while self._at_gate(n):
            if self.stop.wait(0.05):
                return False
        if (wait := self._due(n)) > 0:
            time.sleep(wait)
        return True

    async def claim_async(self) -> bool:
        n = self._ticket()
        if n is None:
            return False
        while self._at_gate(n):
            if self.stop.is_set():
                return False
            await asyncio.sleep(0.05)
        if (wait := self._due(n)) > 0:
            await asyncio.sleep(wait)
        return True

    def done(self) -> int:
        return sum(t.calls for t in self.tallies)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        print(text, flush=True)

    # -- workers
    def sync_worker(self, ops: Any, menu: dict[str, float], client: Any, t: Tally) -> None:
        names, weights = list(menu), list(itertools.accumulate(menu.values()))
        rng = ops.rng
        while self.claim_sync():
            name = rng.choices(names, cum_weights=weights)[0]
            started, g0 = time.monotonic(), gens_now()
            try:
                outcome = drive_sync(getattr(ops, "op_" + name)(), client)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:
                settle_exception(t, name, started, e, ops.history)
                outcome = e
            else:
                settle_outcome(t, name, started, outcome)
            ops.history.append((name, short(outcome), g0, gens_now()))
            t.by_op[name] += 1

    async def async_worker(self, ops: Any, menu: dict[str, float], client: Any,
                           t: Tally, pace: float = 0.0) -> None:
        names, weights = list(menu), list(itertools.accumulate(menu.values()))
        rng = ops.rng
        while await self.claim_async():
            name = rng.choices(names, cum_weights=weights)[0]
            started, g0 = time.monotonic(), gens_now()
            try:
                outcome = await drive_async(getattr(ops, "op_" + name)(), client)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:
                settle_exception(t, name, started, e, ops.history)
                outcome = e
            else:
                settle_outcome(t, name, started, outcome)
            ops.history.append((name, short(outcome), g0, gens_now()))
            t.by_op[name] += 1
            if pace:
                await asyncio.sleep(pace)

    # -- faults
    @contextlib.contextmanager
    def window(self, *names: str) -> Iterator[None]:
        for n in names:
            setattr(G, n, getattr(G, n) + 1)
        try:
            yield
        finally:
            time.sleep(GRACE_AFTER_FAULT)
            for n in names:
                setattr(G, n, getattr(G, n) + 1)

    def pg_terminate(self) -> int:
        assert self.pg_srv is not None
        sql = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
               f"WHERE application_name = '{APP_NAME}' AND pid <> pg_backend_pid()")
        if psycopg is None:
            return int(self.pg_srv.sql(sql) or 0)
        dsn = self.pg_srv.dsn(application_name=ADMIN_APP_NAME)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(sql).fetchone()
        return int(row[0]) if row else 0

    def faults(self) -> list[tuple[str, Callable[[], str]]]:
        r, p = self.redis_srv, self.pg_srv
        assert r is not None and p is not None

        def redis_kill() -> str:
            with self.window("redis_loss", "redis_fault"):
                r.restart(hard=True)
            return f"pid {r.pid}"

        def redis_down() -> str:
            with self.window("redis_loss", "redis_fault"):
                r.restart(hard=True, down_for=OUTAGE_SECONDS)
            return f"pid {r.pid}"

        def redis_stall() -> str:
            with self.window("redis_fault"), r.frozen():
                time.sleep(STALL_SECONDS)
            return ""

        def redis_client_kill() -> str:
            with self.window("redis_fault"):
                n = r.kill_clients()
            return f"{n} connections"

        def pg_terminate() -> str:
            with self.window("pg_fault"):
                n = self.pg_terminate()
            return f"{n} backends"

        def pg_stall() -> str:
            with self.window("pg_fault"), p.frozen():
                time.sleep(STALL_SECONDS)
            return ""

        def pg_restart() -> str:
            with self.window("pg_fault"):
                p.restart()
            return f"pid {p.pid}"

        return [
            ("redis SIGKILL+restart", redis_kill),
            ("pg_terminate_backend", pg_terminate),
            ("redis SIGSTOP 1.5s", redis_stall),
            ("PostgreSQL SIGSTOP 1.5s", pg_stall),
            ("redis CLIENT KILL", redis_client_kill),
            ("PostgreSQL restart", pg_restart),
            ("redis down 1s", redis_down),
        ]

    def fault_thread(self) -> None:
        try:
            start_at, end_at = int(self.total * FAULTS_FROM), int(self.total * FAULTS_UNTIL * 0.97)
            while self.done() < start_at and not self.stop.wait(0.02):
                pass
            kinds = self.faults()
            rounds = 0
            while not self.stop.is_set():
                for name, fn in kinds:
                    if self.stop.is_set() or (rounds and self.done() >= end_at):
                        break
                    t, done = self.elapsed(), self.done()
                    self.fault_counts[name] += 1  # counted when it starts
                    try:
                        info = fn()
                    except Exception as e:  # the fault itself failed: the run is not valid
                        self.fault_errors.append(f"{name}: {type(e).__name__}: {e}")
                        self.stop.set()
                        break
                    line = (f"  [{t:7.1f}s] fault {name} {info} (at call {done:,}, "
                            f"took {self.elapsed() - t:.1f}s)")
                    self.fault_log.append(line)
                    if self.verbose:
                        self.say(line)
                    self.stop.wait(PAUSE_BETWEEN_FAULTS)
                rounds += 1
                if self.done() >= end_at:
                    break
        finally:
            if self.rate:
                gate_time = self.t0 + self.gate / self.rate
                self.gate_shift = max(0.0, time.monotonic() - gate_time)
            self.faults_over.set()

    # -- reports
    def snapshot(self) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        intended: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        cancelled = wrong = untyped = unexplained = 0
        slowest, slowest_op = 0.0, ""
        for t in self.tallies:
            errors.update(dict(t.errors))
            intended.update(dict(t.intended))
            by_kind[t.kind] += t.calls
            cancelled += t.cancelled
            wrong += t.wrong
            untyped += t.untyped
            unexplained += t.unexplained
            if t.slowest > slowest:
                slowest, slowest_op = t.slowest, t.slowest_op
        return {
            "calls": sum(by_kind.values()), "elapsed": self.elapsed(), "rss": rss_mb(),
            "fds": fd_count(), "native": native_threads(), "py": threading.active_count(),
            "errors": errors, "intended": intended, "by_kind": by_kind,
            "cancelled": cancelled, "wrong": wrong, "untyped": untyped,
            "unexplained": unexplained, "faults": sum(self.fault_counts.values()),
            "slowest": slowest, "slowest_op": slowest_op,
        }

    def report_quarter(self, q: int, s: dict[str, Any], prev: dict[str, Any]) -> None:
        calls = s["calls"] - prev["calls"]
        secs = s["elapsed"] - prev["elapsed"]
        faults = s["faults"] - prev["faults"]
        self.say(
            f"quarter {q}/4  calls {s['calls']:,}  elapsed {s['elapsed']:.1f}s "
            f"({calls / max(secs, 1e-9):,.0f}/s)  RSS {s['rss']:.1f} MB  fds {s['fds']}  "
            f"threads {s['native']} native / {s['py']} Python  faults {faults}"
        )
        self.say(f"  errors:    {fmt_counter(s['errors'] - prev['errors'])}")
        self.say(f"  intended:  {fmt_counter(s['intended'] - prev['intended'])}")
        self.say(
            f"  cancelled by us {s['cancelled'] - prev['cancelled']:,}   "
            f"wrong values {s['wrong'] - prev['wrong']}   untyped {s['untyped'] - prev['untyped']}"
            f"   unexplained server errors {s['unexplained'] - prev['unexplained']}   "
            f"slowest call so far {s['slowest']:.2f}s ({s['slowest_op']})"
        )

    # -- set-up
    def setup_pg(self, db: pg.Client) -> None:
        db.execute(
            "DROP TABLE IF EXISTS soak_ctr, soak_log; "
            "CREATE TABLE soak_ctr (w int PRIMARY KEY, v bigint NOT NULL DEFAULT 0, "
            "touched bigint NOT NULL DEFAULT 0); "
            "CREATE TABLE soak_log (w int, seq bigint, i int, payload text, "
            "PRIMARY KEY (w, seq, i)); "
            "INSERT INTO soak_ctr (w) SELECT generate_series(0, 999)"
        )

    def warm_up(self, loop: asyncio.AbstractEventLoop, r: Any, ar: Any, db: Any, adb: Any,
                redis_ops: list[RedisOps], pg_ops: list[PgOps]) -> None:
        """Every op once or a few times, uncounted, so that connections,
        prepared statements, completers and caches exist before the baseline;
        and every worker's hash is written."""
        t = Tally("warm-up")
        for ops in redis_ops:
            client = ar if ops.is_async else r
            for name in ("hgetall", "set", "get", "incr"):
                op = getattr(ops, "op_" + name)()
                if ops.is_async:
                    asyncio.run_coroutine_threadsafe(drive_async(op, client), loop).result(30)
                else:
                    drive_sync(op, client)
        for ops in pg_ops[:3] + [p for p in pg_ops if not p.is_async]:
            client = adb if ops.is_async else db
            menu = PG_ASYNC_MENU if ops.is_async else PG_SYNC_MENU
            for name in menu:
                try:
                    op = getattr(ops, "op_" + name)()
                    if ops.is_async:
                        out = asyncio.run_coroutine_threadsafe(drive_async(op, client), loop)
                        settle_outcome(t, name, time.monotonic(), out.result(30))
                    else:
                        settle_outcome(t, name, time.monotonic(), drive_sync(op, client))
                except Exception as e:
                    settle_exception(t, name, time.monotonic(), e)
        if t.wrong or t.untyped or t.unexplained:
            raise SystemExit(f"warm-up failed: errors {dict(t.errors)}, wrong {t.wrong}, "
                             f"untyped {t.untyped}, unexplained {t.unexplained}:\n"
                             + "\n".join(itertools.chain(*PROBLEMS.values())))

    def wait_settled(self, fds0: int, native0: int, py0: int) -> tuple[int, int, int, float]:
        deadline = time.monotonic() + SETTLE_LIMIT
        start = time.monotonic()
        while True:
            fds, native, py = fd_count(), native_threads(), threading.active_count()
            if (fds <= fds0 and native <= native0 and py <= py0) or time.monotonic() > deadline:
                return fds, native, py, time.monotonic() - start
            time.sleep(0.05)

    # -- the whole run
    def run(self) -> int:
        faulthandler.dump_traceback_later(self.time_limit + 180, exit=True)
        pace = f"{self.rate:,.0f} calls/s" if self.rate else "as fast as possible"
        self.say(f"soak: {self.total:,} calls at {pace}, Redis and PostgreSQL, blocking threads "
                 f"and asyncio; faults from {FAULTS_FROM:.0%} to {FAULTS_UNTIL:.0%} of the calls; "
                 f"seed {self.seed}; time limit {self.time_limit:.0f}s")
        self.say(f"  {dt.datetime.now(dt.timezone.utc).isoformat(timespec='seconds')}, "
                 f"{os.cpu_count()} CPUs, load {' '.join(f'{x:.1f}' for x in os.getloadavg())}, "
                 f"Python {sys.version.split()[0]}, iokernel {iokernel.__version__}")
        redis_srv = self.redis_srv = RedisServer()
        pg_srv = self.pg_srv = PostgresServer()
        loop = asyncio.new_event_loop()
        loop_thread = threading.Thread(target=loop.run_forever, name="soak-asyncio", daemon=True)
        try:
            redis_srv.start()
            pg_srv.start()
            self.say(f"  redis-server {redis_srv.version} on 127.0.0.1:{redis_srv.port}, "
                     f"PostgreSQL {pg_srv.version} on 127.0.0.1:{pg_srv.port} (started here)")
            return self._run(loop, loop_thread)
        finally:
            self.stop.set()
            faulthandler.cancel_dump_traceback_later()
            if loop.is_running():
                loop.call_soon_threadsafe(loop.stop)
                loop_thread.join(10)
            if not loop.is_running():
                loop.close()
            redis_srv.stop(cleanup=True)
            pg_srv.stop(cleanup=True)

    def _run(self, loop: asyncio.AbstractEventLoop, loop_thread: threading.Thread) -> int:
        assert self.redis_srv is not None and self.pg_srv is not None
        url = self.redis_srv.url()
        dsn = self.pg_srv.dsn(application_name=APP_NAME)
        r = redis.Client(url, timeout=REDIS_TIMEOUT, connect_timeout=1.0)
        db = pg.Client(dsn, timeout=PG_TIMEOUT, connect_timeout=2.0)
        loop_thread.start()

        async def make_async() -> tuple[Any, Any]:
            return (redis.AsyncClient(url, timeout=REDIS_TIMEOUT, connect_timeout=1.0),
                    pg.AsyncClient(dsn, timeout=PG_TIMEOUT, connect_timeout=2.0))

        ar, adb = asyncio.run_coroutine_threadsafe(make_async(), loop).result(30)
        self.setup_pg(db)

        rng = random.Random(self.seed)
        redis_ops = ([RedisOps(f"ra{i}", random.Random(rng.random()), True)
                      for i in range(REDIS_ASYNC_TASKS)]
                     + [RedisOps(f"rs{i}", random.Random(rng.random()), False)
                        for i in range(REDIS_THREADS)])
        pg_ops = ([PgOps(f"pa{i}", i, random.Random(rng.random()), True)
                   for i in range(PG_ASYNC_TASKS)]
                  + [PgOps(f"ps{i}", 100 + i, random.Random(rng.random()), False)
                     for i in range(PG_THREADS)])
        slow_ops = PgOps("pslow", 999, random.Random(rng.random()), True)
        self.warm_up(loop, r, ar, db, adb, redis_ops, pg_ops)
        time.sleep(0.5)
        fds0, native0, py0, rss0 = fd_count(), native_threads(), threading.active_count(), rss_mb()
        fd_table0 = fd_table()
        self.say(f"  baseline after warm-up: RSS {rss0:.1f} MB, fds {fds0}, threads {native0} "
                 f"native / {py0} Python")
        self.say("")

        def tally(kind: str) -> Tally:
            t = Tally(kind)
            self.tallies.append(t)
            return t

        threads = []
        self.t0 = time.monotonic()
        for ops in redis_ops + pg_ops:
            if ops.is_async:
                continue
            is_redis = isinstance(ops, RedisOps)
            kind = "redis.Client" if is_redis else "pg.Client"
            th = threading.Thread(
                target=self.sync_worker, name=f"soak-{ops.name}", daemon=True,
                args=(ops, REDIS_SYNC_MENU if is_redis else PG_SYNC_MENU,
                      r if is_redis else db, tally(kind)))
            threads.append(th)

        async def async_main() -> None:
            jobs = []
            for ops in redis_ops:
                if ops.is_async:
                    jobs.append(self.async_worker(ops, REDIS_ASYNC_MENU, ar,
                                                  tally("redis.AsyncClient")))
            for ops in pg_ops:
                if ops.is_async:
                    jobs.append(self.async_worker(ops, PG_ASYNC_MENU, adb, tally("pg.AsyncClient")))
            jobs.append(self.async_worker(slow_ops, {"slow": 1}, adb, tally("pg.AsyncClient"),
                                          pace=2.0))
            await asyncio.gather(*jobs)

        faults = threading.Thread(target=self.fault_thread, name="soak-faults", daemon=True)
        main_fut = asyncio.run_coroutine_threadsafe(async_main(), loop)
        for th in threads:
            th.start()
        faults.start()

        quarters: list[dict[str, Any]] = []
        prev: dict[str, Any] = {"calls": 0, "elapsed": 0.0, "faults": 0, "errors": Counter(),
                                "intended": Counter(), "cancelled": 0, "wrong": 0, "untyped": 0,
                                "unexplained": 0}
        verdict_notes: list[str] = []
        last_done, last_change = 0, time.monotonic()
        while True:
            done = self.done()
            now = time.monotonic()
            if done != last_done:
                last_done, last_change = done, now
            q = len(quarters) + 1
            workers_over = main_fut.done() and not any(th.is_alive() for th in threads)
            if q <= 4 and (done >= self.total * q // 4 or (q == 4 and workers_over)):
                if q == 4 and not workers_over:
                    time.sleep(0.01)
                    continue
                s = self.snapshot()
                self.report_quarter(q, s, prev)
                quarters.append(s)
                prev = s
                continue
            if workers_over:
                break
            if now - last_change > NO_PROGRESS_LIMIT and not self.stop.is_set():
                verdict_notes.append(f"no call finished for {NO_PROGRESS_LIMIT:.0f}s at "
                                     f"{done:,} calls: a hang (stacks above)")
                self.say(f"!! no progress for {NO_PROGRESS_LIMIT:.0f}s; Python stacks:")
                faulthandler.dump_traceback(all_threads=True)
                self.stop.set()
            if self.elapsed() > self.time_limit and not self.stop.is_set():
                verdict_notes.append(f"time limit {self.time_limit:.0f}s reached at {done:,} calls")
                self.stop.set()
            if self.stop.is_set() and now - last_change > 30:
                verdict_notes.append("workers did not stop within 30s of being told to")
                break
            time.sleep(0.01)
        self.stop.set()  # ends the fault thread's pause
        faults.join(30)
        with contextlib.suppress(Exception):
            main_fut.result(5)
        for th in threads:
            th.join(5)

        # -- after the calls: connections settle, no leaked fds or threads
        fds1, native1, py1, settle_s = self.wait_settled(fds0, native0, py0)
        s = self.snapshot()
        self.say("")
        self.say(f"after the calls (settled {settle_s:.1f}s): RSS {s['rss']:.1f} MB, fds {fds1}, "
                 f"threads {native1} native / {py1} Python")
        self.say(f"calls by client: {fmt_counter(s['by_kind'])}")
        by_op: Counter[str] = Counter()
        for t in self.tallies:
            by_op.update({f"{t.kind.split('.')[0]}.{k}": v for k, v in t.by_op.items()})
        self.say(f"calls by op: {fmt_counter(by_op)}")
        self.say(f"faults: {fmt_counter(self.fault_counts)}")
        self.say(f"errors (all): {fmt_counter(s['errors'])}")
        self.say(f"intended errors (all): {fmt_counter(s['intended'])}; cancelled by us "
                 f"{s['cancelled']:,}")
        if self.verbose:
            for k, v in sorted(SAMPLES.items()):
                self.say(f"  e.g. {k}: {v}")
            self.say("\n".join(self.fault_log))

        # -- verdict
        failures: list[str] = list(verdict_notes)
        failures += [f"fault could not be injected: {e}" for e in self.fault_errors]
        if s["calls"] < self.total:
            failures.append(f"only {s['calls']:,} of {self.total:,} calls done")
        if s["wrong"]:
            failures.append(f"{s['wrong']} wrong values")
        if s["untyped"]:
            failures.append(f"{s['untyped']} untyped errors")
        if s["unexplained"]:
            failures.append(f"{s['unexplained']} unexplained server errors")
        if s["slowest"] > SLOW_CALL_LIMIT:
            failures.append(f"a call took {s['slowest']:.1f}s ({s['slowest_op']}), past every "
                            "timeout")
        growth = quarters[-1]["rss"] - quarters[0]["rss"] if len(quarters) == 4 else float("nan")
        if not growth < RSS_GROWTH_LIMIT_MB:
            failures.append(f"RSS grew {growth:+.1f} MB from the first quarter to the last")
        if fds1 > fds0:
            new = {fd: p for fd, p in fd_table().items() if fd_table0.get(fd) != p}
            failures.append(f"fds {fds1} after the calls, {fds0} at baseline; new: {new}")
        if native1 > native0 or py1 > py0:
            failures.append(f"threads {native1} native / {py1} Python after the calls, "
                            f"{native0} / {py0} at baseline")
        missing = [name for name, _ in self.faults() if not self.fault_counts[name]]
        if missing:
            failures.append(f"faults never injected: {missing}")
        self.say("")
        self.say(f"RSS growth from quarter 1 to quarter 4: {growth:+.1f} MB "
                 f"(limit {RSS_GROWTH_LIMIT_MB:.0f} MB); fds {fds0} at baseline, {fds1} after; "
                 f"wrong values {s['wrong']}; untyped errors {s['untyped']}; unexplained server "
                 f"errors {s['unexplained']}")
        if UNEXPLAINED:
            self.say(f"unexplained server errors: {fmt_counter(UNEXPLAINED)}")
        for kind, seen in PROBLEMS.items():
            self.say(f"first {kind} problems:")
            for p in seen:
                self.say("  " + p.replace("\n", "\n  "))
        if failures:
            self.say("verdict: FAIL — " + "; ".join(failures))
            return 1
        self.say(f"verdict: PASS — {s['calls']:,} calls in {s['elapsed']:.0f}s, every outcome "
                 "the right value or a typed iokernel error")
        return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=int(os.environ.get("SOAK_CALLS", "1000000")))
    ap.add_argument("--rate", type=float, default=float(os.environ.get("SOAK_RATE", "5000")),
                    help="calls per second to aim at (0: as fast as possible)")
    ap.add_argument("--time-limit", type=float,
                    default=float(os.environ.get("SOAK_TIME_LIMIT", "1200")))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "1")))
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="print each fault as it happens and one message per error type")
    args = ap.parse_args(argv)
    if args.calls < 1000:
        ap.error("--calls: at least 1000")
    rate = args.rate
    if rate > 0:  # slow enough that a round of faults fits in the fault window
        rate = min(rate, args.calls * (FAULTS_UNTIL - FAULTS_FROM) / ROUND_SECONDS)
    return Soak(args.calls, rate, args.time_limit, args.seed, args.verbose).run()


if __name__ == "__main__":
    sys.exit(main())
