"""Soak test (bench/soak.py): the fault injector. The seven faults done to
the redis-server and the PostgreSQL started for the run (kill and restart,
down for a while, SIGSTOP, CLIENT KILL, pg_terminate_backend, restart), each
inside a fault window that moves the fault generations (soak_model.G) the
checks rely on; and the thread that runs them in rounds from 5 % to 70 % of
the calls, then lets the gated calls go.

Faults is a part of the Soak class (bench/soak.py); the attributes it uses
that other parts set are declared below.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator

from soak_model import (
    ADMIN_APP_NAME,
    APP_NAME,
    FAULTS_FROM,
    FAULTS_UNTIL,
    GRACE_AFTER_FAULT,
    OUTAGE_SECONDS,
    PAUSE_BETWEEN_FAULTS,
    STALL_SECONDS,
    G,
)

from tests.servers import PostgresServer, RedisServer

try:  # the admin connection that terminates backends (requirements-dev.txt)
    import psycopg
except ImportError:  # pragma: no cover - then psql does it (tests/servers.py)
    psycopg = None


class Faults:
    total: int
    rate: float
    gate: int
    gate_shift: float
    t0: float
    verbose: bool
    stop: threading.Event
    faults_over: threading.Event
    fault_counts: Counter[str]
    fault_log: list[str]
    fault_errors: list[str]
    redis_srv: RedisServer | None
    pg_srv: PostgresServer | None
    done: Callable[[], int]
    elapsed: Callable[[], float]
    say: Callable[[str], None]

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
