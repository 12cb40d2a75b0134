"""A Redis Sentinel failover under load: iokernel (``redis+sentinel://``)
against redis-py's asyncio ``Sentinel`` client, in the same run.

Set-up (real, on loopback; tests/servers/sentinel_group.py): a primary, a
replica and three sentinels (quorum 2, down-after 1 s). 50 asyncio tasks
append numbered values to their own lists and read the last one back
(tests/integration/sentinel/load.py). A separate subscriber on every
sentinel notes when ``+switch-master`` is first published. Then:

* ``failover``: ``SENTINEL FAILOVER mymaster`` (the old primary stays up and
  keeps accepting writes until the sentinels turn it into a replica);
* ``kill``: the primary is killed (SIGKILL) and the sentinels fail over
  after down-after.

The load runs until ``--after`` seconds past the switch. Measured per
client: time from ``+switch-master`` to the first write that lands on the
new primary (acknowledged, and present there afterwards), errors callers
saw, and acknowledged writes missing on the new primary afterwards.

Usage:
    python bench/sentinel_failover.py [--scenario failover|kill|both] [--after 15]
Writes bench/results/sentinel-latest.json and .md. A benchmark, not a
test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import redis.asyncio.sentinel as redis_sentinel
import redis.exceptions as redis_exc

import iokernel
from iokernel import redis as ioredis
from tests.integration.sentinel.load import Outcome, run, wait_for
from tests.servers import SentinelGroup
from tests.servers.resp import RespReader, encode_command

TASKS = 50


class SwitchWatcher:
    """Subscribes to ``+switch-master`` on every sentinel (threads, raw
    sockets) and keeps the monotonic time of the first message."""

    def __init__(self, group: SentinelGroup) -> None:
        self.first: float | None = None
        self._stop = threading.Event()
        self._socks: list[socket.socket] = []
        for s in group.sentinels:
            sock = socket.create_connection((s.host, s.port), timeout=5)
            sock.sendall(encode_command(("SUBSCRIBE", "+switch-master")))
            reader = RespReader(sock)
            reader.reply()  # the subscription is in place
            sock.settimeout(None)  # close() ends the thread's read
            self._socks.append(sock)
            t = threading.Thread(target=self._listen, args=(reader,), daemon=True)
            t.start()

    def _listen(self, reader: Any) -> None:
        while not self._stop.is_set():
            try:
                reader.reply()
            except (OSError, ValueError):
                return
            if self.first is None:
                self.first = time.monotonic()

    def close(self) -> None:
        self._stop.set()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.close()


def make_client(kind: str, group: SentinelGroup) -> tuple[Any, tuple[type, ...], Any]:
    """The client, its error tree, and how to close it."""
    if kind == "iokernel":
        c = ioredis.AsyncClient(group.url(), timeout=10)
        return c, (iokernel.Error,), c.close
    s = redis_sentinel.Sentinel(
        [(x.host, x.port) for x in group.sentinels], socket_timeout=1.0)
    m = s.master_for("mymaster", socket_timeout=1.0, socket_connect_timeout=1.0)

    async def close() -> None:
        await m.aclose()
        for sc in s.sentinels:
            await sc.aclose()

    return m, (redis_exc.RedisError,), close


async def one(kind: str, scenario: str, after: float) -> dict[str, Any]:
    with SentinelGroup() as group:
        new = group.replica
        assert new is not None
        watcher = SwitchWatcher(group)
        client, typed, close = make_client(kind, group)
        out = Outcome(TASKS)
        stop = asyncio.Event()
        try:
            if kind == "iokernel":
                await client.ready(timeout=30)
            load = asyncio.create_task(run(client, stop, out, typed))
            await wait_for(lambda: out.acked_total() >= 20 * TASKS, 60, "writes before")
            errors_before = sum(out.errors.values())
            acked_before = out.acked_total()
            t0 = time.monotonic()
            if scenario == "failover":
                await asyncio.to_thread(group.failover)
            else:
                group.primary.kill()
            await wait_for(lambda: watcher.first is not None, 60, "+switch-master")
            switch = watcher.first
            assert switch is not None
            await asyncio.sleep(after)
            stop.set()
            await asyncio.wait_for(load, 30)
        finally:
            stop.set()
            watcher.close()
            await close()
        # Read the lists on the new primary (the replica, promoted).
        lists: dict[str, list[bytes]] = {}

        def read_list(k: str) -> list[bytes]:
            lists[k] = list(new.command_raw("LRANGE", k, "0", "-1"))
            return lists[k]

        lost, present = out.lost(read_list)
        first_landed = min(
            (t for i, a in enumerate(out.acked) for (t, seq) in a
             if t >= switch and seq in present[i]),
            default=None,
        )
        lost_after_switch = sum(
            1 for i, a in enumerate(out.acked) for (t, seq) in a
            if t >= switch and seq not in present[i])
        return {
            "client": kind,
            "scenario": scenario,
            "switch_after_trigger_s": round(switch - t0, 3),
            "first_write_on_new_primary_ms": (
                None if first_landed is None else round((first_landed - switch) * 1000, 1)),
            "acked": out.acked_total(),
            "acked_before_trigger": acked_before,
            "lost": lost,
            "lost_acked_after_switch": lost_after_switch,
            "errors": sum(out.errors.values()) - errors_before,
            "error_kinds": dict(out.errors),
            "untyped": out.untyped,
            "misrouted": len(out.misrouted),
        }


def table(rows: list[dict[str, Any]]) -> str:
    head = ("| scenario | client | +switch-master → first write on new primary | "
            "errors seen | acked writes lost (after switch) | acked writes |\n"
            "|---|---|---|---|---|---|\n")
    lines = []
    for r in rows:
        fw = r["first_write_on_new_primary_ms"]
        lines.append(
            f"| {r['scenario']} | {r['client']} | "
            f"{'never' if fw is None else f'{fw:,.1f} ms'} | {r['errors']:,} "
            f"({', '.join(f'{k} {v}' for k, v in r['error_kinds'].items()) or '-'}) | "
            f"{r['lost']:,} ({r['lost_acked_after_switch']:,}) | {r['acked']:,} |")
    return head + "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", choices=["failover", "kill", "both"], default="both")
    ap.add_argument("--after", type=float, default=15.0,
                    help="seconds the load runs past +switch-master")
    args = ap.parse_args()
    scenarios = ["failover", "kill"] if args.scenario == "both" else [args.scenario]
    rows = []
    for sc in scenarios:
        for kind in ("iokernel", "redis-py"):
            r = asyncio.run(one(kind, sc, args.after))
            print(json.dumps(r), flush=True)
            rows.append(r)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "sentinel-latest.json").write_text(json.dumps(rows, indent=1) + "\n")
    (out / "sentinel-latest.md").write_text(table(rows))
    print(table(rows))


if __name__ == "__main__":
    main()
