"""A failover workload shared by the sentinel tests and bench/sentinel_failover.py:
N asyncio tasks, each appending its own numbered values to its own list
(``RPUSH fo:<i> "<i>:<seq>"``, a write) and reading the last one back
(``LINDEX fo:<i> -1``, a read), recording which writes were acknowledged
and when, every error by type, and any reply that belongs to another task
(misrouted). Afterwards ``Outcome.check`` reads the lists on the node that
is primary by then: acknowledged writes missing there are lost.

It works with any client that has awaitable ``rpush``/``lindex`` (iokernel's
AsyncClient, redis-py's asyncio client).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

# After an error a task pauses this long, so a primary that is down is not
# hammered in a tight loop (pacing only; nothing waits on it).
ERROR_PAUSE = 0.01


def key(i: int) -> str:
    return f"fo:{i}"


@dataclass
class Outcome:
    tasks: int
    #: (monotonic time, seq) of each acknowledged write, per task.
    acked: list[list[tuple[float, int]]] = field(default_factory=list)
    #: Error class name -> count.
    errors: Counter[str] = field(default_factory=Counter)
    #: Errors that are not of the client's own error tree: repr of a few.
    untyped: list[str] = field(default_factory=list)
    #: Replies that belong to another task (or make no sense).
    misrouted: list[str] = field(default_factory=list)
    reads: int = 0

    def acked_total(self) -> int:
        return sum(len(a) for a in self.acked)

    def acked_after(self, t: float) -> int:
        return sum(1 for a in self.acked for (ts, _) in a if ts >= t)

    def lost(self, read_list: Any) -> tuple[int, list[set[int]]]:
        """Acknowledged writes missing from the lists `read_list(key)`
        returns (values as bytes), and the seqs present there per task
        (values of another task count as misrouted)."""
        lost = 0
        present_all: list[set[int]] = []
        for i, acks in enumerate(self.acked):
            present = set()
            for v in read_list(key(i)):
                owner, _, seq = v.decode().partition(":")
                if owner != str(i):
                    self.misrouted.append(f"list {key(i)} holds {v!r}")
                    continue
                present.add(int(seq))
            present_all.append(present)
            lost += sum(1 for (_, s) in acks if s not in present)
        return lost, present_all


async def run(client: Any, stop: asyncio.Event, out: Outcome, typed: tuple[type, ...]) -> None:
    """Run `out.tasks` tasks on `client` until `stop` is set."""
    out.acked = [[] for _ in range(out.tasks)]

    async def one(i: int) -> None:
        seq = 0
        mine = f"{i}:".encode()
        while not stop.is_set():
            seq += 1
            value = f"{i}:{seq}"
            try:
                await client.rpush(key(i), value)
                out.acked[i].append((time.monotonic(), seq))
                got = await client.lindex(key(i), -1)
                out.reads += 1
                if got is not None and not bytes(got).startswith(mine):
                    out.misrouted.append(f"task {i} read {got!r}")
            except typed as e:
                out.errors[type(e).__name__] += 1
                await asyncio.sleep(ERROR_PAUSE)
            except Exception as e:
                out.errors[type(e).__name__] += 1
                if len(out.untyped) < 10:
                    out.untyped.append(repr(e))
                await asyncio.sleep(ERROR_PAUSE)

    await asyncio.gather(*(one(i) for i in range(out.tasks)))


async def wait_for(cond: Any, timeout: float, what: str, step: float = 0.05) -> None:
    """Poll `cond()` until true; AssertionError naming `what` after `timeout` s."""
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(step)
