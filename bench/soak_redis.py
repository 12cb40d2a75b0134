"""Soak test (bench/soak.py): the Redis load. RedisOps is one worker's keys
and what their values may be; its op_* methods are the calls (GET, SET, INCR,
HGETALL, pipelines, MULTI/EXEC, calls that fail on purpose, and from asyncio
wait_for and task.cancel()), each checking its reply exactly. The menus weigh
the ops for the asyncio tasks and the threads.
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
    REDIS_TIMEOUT,
    G,
    Op,
    Wrong,
    lost,
    mark,
    unsettled,
)

import iokernel
from iokernel.redis import ResponseError


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
                c.pipeline(transaction=False).set(self.k, v).get(self.k).incr(self.c).hgetall(self.h).execute()
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
                c.pipeline(transaction=False).set(self.s, b"text").incr(self.s).get(self.k)
                .execute(raise_on_error=False)
            )
            if not (isinstance(res, list) and len(res) == 3 and res[0] is True
                    and isinstance(res[1], ResponseError) and "not an integer" in str(res[1])):
                raise Wrong(f"pipeline SET/INCR(bad)/GET, raise_on_error=False -> {res!r}")
            self.check_get(res[2], g0, "pipeline GET after an error")
            return INTENDED, "ResponseError (in place)"
        try:
            res = yield lambda c: (
                c.pipeline(transaction=False).set(self.s, b"text").incr(self.s).get(self.k).execute()
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
