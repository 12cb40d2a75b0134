"""PostgreSQL failover (issue 13): iokernel against asyncpg, in the same run.

Scenario ``promote`` (per client, per round, on servers of its own): a
primary (tests/servers PostgresServer) and a streaming standby made by
``pg_basebackup -R`` (PostgresStandby), both on loopback. The client gets
the multi-host DSN ``h1,h2/...?target_session_attrs=read-write``:

* iokernel: one ``pg.AsyncClient`` with its defaults (2 connections per
  host, timeout 30 s, health check every 5 s);
* asyncpg: ``create_pool(dsn, min_size=10, max_size=10)``, each write in
  ``async with pool.acquire()``.

20 tasks write in the loop a user writes: ``INSERT INTO w VALUES ($1, $2)``;
on any error count it (by type), sleep 50 ms, go on. After 2 s of steady
writes the old primary is stopped (``pg_ctl stop -m fast``) and the standby
promoted (``pg_ctl promote -w``). Measured: the time from the promotion
(``pg_ctl promote`` returned) to the first write that succeeds after the
stop, the caller errors seen from the stop to 3 s after the promotion, and
acknowledged writes missing from the new primary afterwards.

Scenario ``prefer-standby``: the same pair, DSN with
``target_session_attrs=prefer-standby``; 20 tasks read ``SELECT
inet_server_port()`` in the same loop. After 2 s the standby is stopped.
Measured: reads served by the standby before, caller errors, the time from
the stop to the first read served by the primary.

Usage:
    python bench/pg_failover.py                 # 3 rounds, both peers, both scenarios
    python bench/pg_failover.py --rounds 1 --peers iokernel

Writes bench/results/pg-failover.json and .md. A benchmark, not a test:
nothing here asserts on timings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.servers import PostgresServer
from tests.servers.postgres_standby import PostgresStandby

TASKS = 20
WARM_S = 2.0
AFTER_S = 3.0
PAUSE_S = 0.05
INSERT = "INSERT INTO w VALUES ($1, $2)"


def multi_dsn(primary: PostgresServer, standby: PostgresStandby, attrs: str) -> str:
    return primary.dsn(target_session_attrs=attrs, sslmode="disable").replace(
        f":{primary.port}/", f":{primary.port},{standby.host}:{standby.port}/")


class Client:
    """One peer's way to run a statement: ``run(sql, *args)``."""

    def __init__(self, peer: str, dsn: str) -> None:
        self.peer, self.dsn = peer, dsn
        self.c: Any = None

    async def open(self) -> None:
        if self.peer == "iokernel":
            from iokernel import pg

            self.c = pg.AsyncClient(self.dsn)
            await self.c.ready(30)
        else:
            import asyncpg

            self.c = await asyncpg.create_pool(self.dsn, min_size=10, max_size=10)

    async def run(self, sql: str, *args: Any) -> Any:
        if self.peer == "iokernel":
            if sql.startswith("SELECT"):
                return await self.c.fetchval(sql, *args)
            return await self.c.execute(sql, *args)
        async with self.c.acquire() as conn:
            if sql.startswith("SELECT"):
                return await conn.fetchval(sql, *args)
            return await conn.execute(sql, *args)

    async def close(self) -> None:
        if self.c is not None:
            await asyncio.wait_for(self.c.close(), 10)


class Load:
    """TASKS tasks running ``step(task, seq)`` in a loop; every success and
    error is stamped."""

    def __init__(self, step: Callable[[int, int], Awaitable[Any]]) -> None:
        self.step = step
        self.ok: list[tuple[float, int, int, Any]] = []
        self.errors: list[tuple[float, str]] = []
        self.stop = False

    async def task(self, t: int) -> None:
        seq = 0
        while not self.stop:
            seq += 1
            try:
                r = await self.step(t, seq)
                self.ok.append((time.monotonic(), t, seq, r))
            except Exception as e:  # the caller's loop: count, pause, go on
                self.errors.append((time.monotonic(), type(e).__name__))
                await asyncio.sleep(PAUSE_S)

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.task(t)) for t in range(TASKS)]


async def with_pair(fn: Callable[[PostgresServer, PostgresStandby], Awaitable[dict[str, Any]]]
                    ) -> dict[str, Any]:
    primary = PostgresServer()
    await asyncio.to_thread(primary.start)
    standby = PostgresStandby(primary)
    try:
        await asyncio.to_thread(standby.start)
        await asyncio.to_thread(standby.wait_streaming)
        return await fn(primary, standby)
    finally:
        await asyncio.to_thread(standby.stop, cleanup=True)
        await asyncio.to_thread(primary.stop, cleanup=True)


async def promote(peer: str) -> dict[str, Any]:
    async def scenario(primary: PostgresServer, standby: PostgresStandby) -> dict[str, Any]:
        primary.sql("CREATE TABLE w (task int, seq int)")
        await asyncio.to_thread(standby.wait_streaming)
        c = Client(peer, multi_dsn(primary, standby, "read-write"))
        await c.open()
        load = Load(lambda t, s: c.run(INSERT, t, s))
        tasks = load.start()
        try:
            await asyncio.sleep(WARM_S)
            t_stop = time.monotonic()
            await asyncio.to_thread(primary.stop)
            t_stopped = time.monotonic()
            await asyncio.to_thread(standby.promote)
            t_promoted = time.monotonic()
            await asyncio.sleep(AFTER_S)
        finally:
            load.stop = True
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
            await c.close()
        after = [ok for ok in load.ok if ok[0] > t_stopped]
        first = min((ok[0] for ok in after), default=None)
        acked = {(t, s) for _, t, s, _ in load.ok}
        rows = standby.sql_rows("SELECT task, seq FROM w")
        present = {(int(t), int(s)) for t, s in rows}
        errs = [e for e in load.errors if e[0] >= t_stop]
        return {
            "peer": peer,
            "stop_s": t_stopped - t_stop,
            "promote_s": t_promoted - t_stopped,
            "resume_after_promote_s": None if first is None else first - t_promoted,
            "resume_after_stop_s": None if first is None else first - t_stop,
            "errors": len(errs),
            "error_types": dict(Counter(e[1] for e in errs)),
            "writes_before": sum(1 for ok in load.ok if ok[0] < t_stop),
            "writes_after": len(after),
            "acked_missing": len(acked - present),
        }

    return await with_pair(scenario)


async def prefer_standby(peer: str) -> dict[str, Any]:
    async def scenario(primary: PostgresServer, standby: PostgresStandby) -> dict[str, Any]:
        c = Client(peer, multi_dsn(primary, standby, "prefer-standby"))
        await c.open()
        load = Load(lambda t, s: c.run("SELECT inet_server_port()"))
        tasks = load.start()
        try:
            await asyncio.sleep(WARM_S)
            t_stop = time.monotonic()
            await asyncio.to_thread(standby.stop)
            await asyncio.sleep(AFTER_S)
        finally:
            load.stop = True
            await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 60)
            await c.close()
        before = [ok for ok in load.ok if ok[0] < t_stop]
        on_primary = [ok[0] for ok in load.ok if ok[0] >= t_stop and ok[3] == primary.port]
        return {
            "peer": peer,
            "reads_before": len(before),
            "on_standby_before": sum(1 for ok in before if ok[3] == standby.port),
            "errors": sum(1 for e in load.errors if e[0] >= t_stop),
            "error_types": dict(Counter(e[1] for e in load.errors if e[0] >= t_stop)),
            "to_primary_s": min(on_primary) - t_stop if on_primary else None,
            "reads_after": sum(1 for ok in load.ok if ok[0] >= t_stop),
        }

    return await with_pair(scenario)


def med(rows: list[dict[str, Any]], key: str) -> float | None:
    vals = [r[key] for r in rows if r[key] is not None]
    return statistics.median(vals) if vals else None


def fmt(v: float | None, unit: str = "s") -> str:
    if v is None:
        return "never"
    return f"{v:.2f} {unit}" if unit == "s" else f"{v:.0f}"


def report(results: dict[str, list[dict[str, Any]]], peers: list[str], env: dict[str, Any]) -> str:
    out = [f"Rounds: {env['rounds']}; {TASKS} tasks; load average {env['load_start']:.2f} → "
           f"{env['load_end']:.2f} (2 cores, shared); medians over rounds.", "",
           "Promotion (target_session_attrs=read-write, primary stopped, standby promoted):", "",
           "| client | writes resume after promote | after stop | promote took | caller errors |"
           " error types | acked writes missing |",
           "|---|---|---|---|---|---|---|"]
    for p in peers:
        rows = [r for r in results["promote"] if r["peer"] == p]
        types: Counter[str] = Counter()
        for r in rows:
            types.update(r["error_types"])
        out.append(
            f"| {p} | {fmt(med(rows, 'resume_after_promote_s'))} | "
            f"{fmt(med(rows, 'resume_after_stop_s'))} | {fmt(med(rows, 'promote_s'))} | "
            f"{fmt(med(rows, 'errors'), 'n')} (per round: "
            f"{', '.join(str(r['errors']) for r in rows)}) | "
            f"{', '.join(f'{k} {v}' for k, v in types.most_common())} | "
            f"{sum(r['acked_missing'] for r in rows)} |")
    out += ["", "prefer-standby reads, standby stopped:", "",
            "| client | reads on the standby before | caller errors | first read on the primary"
            " after the stop | error types |", "|---|---|---|---|---|"]
    for p in peers:
        rows = [r for r in results["prefer"] if r["peer"] == p]
        types = Counter()
        for r in rows:
            types.update(r["error_types"])
        share = sum(r["on_standby_before"] for r in rows) / max(1, sum(r["reads_before"]
                                                                        for r in rows))
        out.append(f"| {p} | {share:.0%} | {fmt(med(rows, 'errors'), 'n')} (per round: "
                   f"{', '.join(str(r['errors']) for r in rows)}) | "
                   f"{fmt(med(rows, 'to_primary_s'))} | "
                   f"{', '.join(f'{k} {v}' for k, v in types.most_common()) or '-'} |")
    return "\n".join(out) + "\n"


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peers", default="iokernel,asyncpg")
    args = ap.parse_args()
    peers = args.peers.split(",")
    env: dict[str, Any] = {"rounds": args.rounds, "load_start": os.getloadavg()[0]}
    results: dict[str, list[dict[str, Any]]] = {"promote": [], "prefer": []}
    for rnd in range(args.rounds):
        order = peers if rnd % 2 == 0 else peers[::-1]
        for p in order:
            r = await promote(p)
            print("promote", json.dumps(r), flush=True)
            results["promote"].append(r)
            r = await prefer_standby(p)
            print("prefer-standby", json.dumps(r), flush=True)
            results["prefer"].append(r)
    env["load_end"] = os.getloadavg()[0]
    md = report(results, peers, env)
    print(md)
    res = HERE / "results"
    res.mkdir(exist_ok=True)
    (res / "pg-failover.json").write_text(json.dumps({"env": env, **results}, indent=1))
    (res / "pg-failover.md").write_text(md)


if __name__ == "__main__":
    asyncio.run(main())
