"""Soak test (bench/soak.py): driving the load. Tickets hand out exactly the
number of calls asked for, paced, none past the fault gate (70 %) until the
faults are over; the worker loops (a thread or an asyncio task each) draw ops
from a menu, run them and settle their outcomes; the set-up of the tables and
the warm-up run before the baseline.

Load is a part of the Soak class (bench/soak.py); the attributes it uses
that other parts set are declared below.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from typing import Any

from soak_model import drive_async, drive_sync, short
from soak_outcomes import PROBLEMS, Tally, gens_now, settle_exception, settle_outcome
from soak_pg import PG_ASYNC_MENU, PG_SYNC_MENU, PgOps
from soak_redis import RedisOps

from iokernel import pg


class Load:
    total: int
    rate: float
    gate: int
    gate_shift: float
    t0: float
    tickets: itertools.count[int]
    stop: threading.Event
    faults_over: threading.Event

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
