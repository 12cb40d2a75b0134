"""Event-loop turns and completions per wake-up, floor vs iokernel (bench-only).

Why the eventfd floor (bench/floor.py) costs fewer instructions per op than an
iokernel GET may be how often the loop turns: each turn of asyncio's default
loop pays ``_run_once`` (selector poll, handle bookkeeping) whatever it does.
This counts, for ``--conc`` tasks each awaiting ``--ops / conc`` requests:

* loop turns (``loop._run_once`` calls) per op, and how many of them polled
  the selector with a zero timeout (there was work ready) vs blocked;
* wake-ups (calls of the reader watching the completion eventfd) per op, how
  many replies each delivered, and how many found nothing (spurious);
* ready callbacks run per turn.

    python bench/loop_turns.py [--ops 20000] [--conc 50] [--case floor get set]

The counting wrappers add a Python frame per turn and per wake-up, so the
absolute speed here is not the benchmark's; the counts are what matter.
Uses $IOKERNEL_BENCH_REDIS_URL if set, otherwise starts its own redis-server.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)


class Counts:
    def __init__(self) -> None:
        self.turns = 0
        self.ready_run = 0
        self.polls_zero = 0
        self.polls_block = 0
        self.wakeups = 0
        self.delivered = 0
        self.empty = 0

    def report(self, case: str, ops: int) -> str:
        w = max(self.wakeups, 1)
        return (
            f"{case:6s} turns/op {self.turns / ops:.3f}  "
            f"(zero-timeout polls {self.polls_zero / ops:.3f}/op, blocking {self.polls_block / ops:.3f}/op)  "
            f"callbacks/turn {self.ready_run / max(self.turns, 1):.1f}  "
            f"wake-ups/op {self.wakeups / ops:.3f}  replies/wake-up {self.delivered / w:.1f}  "
            f"empty wake-ups {self.empty}"
        )


def instrument(loop: Any, c: Counts) -> None:
    run_once = loop._run_once
    sel = loop._selector
    select = sel.select

    def counted_run_once() -> None:
        c.turns += 1
        c.ready_run += len(loop._ready)
        run_once()

    def counted_select(timeout: float | None = None) -> Any:
        if timeout == 0:
            c.polls_zero += 1
        else:
            c.polls_block += 1
        return select(timeout)

    loop._run_once = counted_run_once
    sel.select = counted_select


def rewire(loop: Any, fd: int, drain: Any, c: Counts) -> None:
    """Replace the reader on ``fd`` with one that counts what ``drain`` delivers."""

    def counted() -> None:
        n = drain()
        c.wakeups += 1
        c.delivered += n
        if n == 0:
            c.empty += 1

    loop.remove_reader(fd)
    loop.add_reader(fd, counted)


async def run_case(case: str, url: str, ops: int, conc: int) -> Counts:
    from cases import KEY, VALUE, split

    loop = asyncio.get_running_loop()
    c = Counts()
    close: Any = None
    if case == "floor":
        from floor import FloorKernel, _resolve

        fk = FloorKernel(loop, "eventfd")

        def floor_drain() -> int:
            import os

            try:
                os.eventfd_read(fk._loop_fd)
            except BlockingIOError:
                pass
            n = 0
            while fk._done:
                b = fk._done.popleft()
                n += len(b)
                _resolve(b)
            return n

        rewire(loop, fk._loop_fd, floor_drain, c)
        op: Any = lambda: fk.get(KEY)  # noqa: E731
        close = fk.close
    else:
        from iokernel import _aio, redis

        r = redis.AsyncClient(url)
        await r.get(KEY)
        comp = _aio.completer(loop)
        rewire(loop, comp.fileno(), comp.drain, c)
        get, set_ = r.get, r.set
        op = (lambda: get(KEY)) if case == "get" else (lambda: set_(KEY, VALUE))

    async def worker(n: int) -> None:
        for _ in range(n):
            await op()

    await asyncio.gather(*(worker(3) for _ in range(conc)))  # warm-up
    fresh = Counts()
    c.__dict__.update(fresh.__dict__)
    instrument(loop, c)
    await asyncio.gather(*(worker(n) for n in split(ops, conc)))
    if close is not None:
        close()
    return c


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=20_000)
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--case", nargs="*", default=["floor", "get", "set"],
                    choices=["floor", "get", "set"])
    args = ap.parse_args()
    from cases import KEY, VALUE, raw_command
    from run import redis_server

    with redis_server() as (url, _how):
        raw_command(url, "SET", KEY, VALUE.decode())
        for case in args.case:
            c = asyncio.run(run_case(case, url, args.ops, args.conc))
            print(c.report(case, args.ops))
    return 0


if __name__ == "__main__":
    sys.exit(main())
