"""Soak test (bench/soak.py): where every call's outcome is judged and
counted. A Tally per worker; settle_outcome / settle_exception classify each
outcome (right value, intended error, our cancellation, typed iokernel error,
wrong value, untyped error, unexplained server error) and keep the first few
problems in full, with the worker's recent calls, for the report.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import Counter
from typing import Any

from soak_model import CANCELLED, INTENDED, PG_FAULT_STATES, G, Unexplained, Wrong, err_key

import iokernel
from iokernel.pg import PostgresError
from iokernel.redis import ResponseError, WatchError


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
