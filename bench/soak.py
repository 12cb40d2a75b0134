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

# The parts, in bench/ beside this file (each says at its top what it is for):
#   soak_model.py     settings, fault generations, outcomes, driving an op
#   soak_outcomes.py  judging and counting every call's outcome (Tally)
#   soak_redis.py     the Redis ops and their checks (RedisOps)
#   soak_pg.py        the PostgreSQL ops and their checks (PgOps)
#   soak_workers.py   tickets, pacing, worker loops, set-up and warm-up (Load)
#   soak_faults.py    the fault injector (Faults)
#   soak_report.py    RSS/fds/threads, quarter reports, totals, verdict (Report)
# and here: the command line and the run (Soak = Load + Faults + Report).

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
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from soak_faults import Faults
from soak_model import (
    APP_NAME,
    FAULTS_FROM,
    FAULTS_UNTIL,
    NO_PROGRESS_LIMIT,
    PG_ASYNC_TASKS,
    PG_THREADS,
    PG_TIMEOUT,
    REDIS_ASYNC_TASKS,
    REDIS_THREADS,
    REDIS_TIMEOUT,
    ROUND_SECONDS,
)
from soak_outcomes import Tally
from soak_pg import PG_ASYNC_MENU, PG_SYNC_MENU, PgOps
from soak_redis import REDIS_ASYNC_MENU, REDIS_SYNC_MENU, RedisOps
from soak_report import Report, fd_count, fd_table, native_threads, rss_mb
from soak_workers import Load

import iokernel
from iokernel import pg, redis
from tests.servers import PostgresServer, RedisServer


class Soak(Load, Faults, Report):
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

        return self.finish(quarters, verdict_notes, fds0, native0, py0, fd_table0)


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
