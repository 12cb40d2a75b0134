"""Soak test (bench/soak.py): what every other part shares. The settings;
the outcomes an op can have (INTENDED, CANCELLED) and the exceptions the
checks raise (Wrong, Unexplained, RolledBack); the fault generations (G) with
which a check decides whether a write may have been lost or may still land;
and the driving of an op, a generator that serves both the blocking and the
asyncio clients.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from typing import Any

from iokernel.pg import PostgresError

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

# --------------------------------------------------------- driving the ops
# An op is a generator: it yields thunks (client -> result, or awaitable of
# the result for an asyncio client), gets their results (or their exceptions
# thrown in), checks them and returns an outcome (None, CANCELLED or
# (INTENDED, error key)). One op serves both the blocking and asyncio clients.
Op = Generator[Callable[[Any], Any], Any, Any]


class _Done(Exception):
    """The op finished; its value is in ``value``."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _advance(op: Op, result: Any, error: BaseException | None) -> Any:
    """Feed one step's result (or error) to the op; its next thunk, or
    ``_Done`` when it returned."""
    try:
        return op.throw(error) if error is not None else op.send(result)
    except StopIteration as s:
        raise _Done(s.value) from None


def drive_sync(op: Op, client: Any) -> Any:
    thunk = next(op)
    try:
        while True:
            try:
                result, error = thunk(client), None
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:
                result, error = None, e
            thunk = _advance(op, result, error)
    except _Done as d:
        return d.value


async def drive_async(op: Op, client: Any) -> Any:
    thunk = next(op)
    try:
        while True:
            try:
                result, error = await thunk(client), None
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:
                result, error = None, e
            thunk = _advance(op, result, error)
    except _Done as d:
        return d.value


def short(outcome: Any) -> str:
    if outcome is None:
        return "ok"
    if isinstance(outcome, BaseException):
        return ("WRONG" if isinstance(outcome, Wrong) else err_key(outcome))[:34]
    if isinstance(outcome, tuple):
        return f"intended {outcome[1]}"
    return str(outcome)


HISTORY = 12
