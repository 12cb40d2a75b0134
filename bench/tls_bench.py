"""TLS benchmarks: iokernel against its peers over TLS, in one interleaved run.

* Redis GET, 50 asyncio tasks sharing one client, over TLS (rediss://, the
  CA verified): iokernel vs redis-py (hiredis) and valkey-glide; iokernel
  in plain text in the same run, for the cost of TLS.
* PostgreSQL ``SELECT $1::int + 1``, 50 asyncio tasks, sslmode=require:
  iokernel (2 connections, its default) vs asyncpg (a pool of 10, as in
  bench/pg_bench.py).
* Reconnect cost, Redis: wall time and process CPU (both sides of the
  client: Python and the kernel thread) per new connection: a full TLS
  handshake (a new service, so no session to resume) vs a resumed one (a
  dedicated connection of a service that already has a session), each next
  to the same in plain text; and the share of reconnects that resumed
  (stats: tls_resumed / tls_handshakes). The same share for PostgreSQL,
  whose server turns session resumption off.

Rows run round-robin (A B C, B C A, ...) for several repetitions; the
median is reported, with ratios to iokernel. Each throughput measurement
runs in a fresh process of its own (measuring.ClientProcesses). Certificates are made with
openssl (tests/tls/certs.py); servers are tests/tls/servers.py's.
Benchmarks, not tests: nothing here asserts on timings.

Usage:
    python bench/tls_bench.py            # about 2 minutes on 2 cores
    python bench/tls_bench.py --quick    # about 30 s
Writes bench/results/tls.md (quick: tls-quick.md) with the load average
before and after the run, prints it, and plots docs/img/bench-tls.png
(quick: bench/results/tls-quick.png).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _p in (str(HERE), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import harness
import measuring

from tests.tls.certs import Certs, make_certs
from tests.tls.servers import PgTlsServer, RedisTlsServer

TASKS = 50
KEY = "tls-bench-key"
VALUE = b"v" * 16


# ------------------------------------------------------------ throughput
async def _drive(call: Callable[[], Awaitable[Any]], ops: int) -> float:
    """ops/s of `ops` calls spread over TASKS tasks."""
    per = ops // TASKS

    async def worker() -> None:
        for _ in range(per):
            await call()

    # warm: every connection a client opens for TASKS callers is open, and
    # statements prepared, before the clock starts
    await asyncio.gather(*(call() for _ in range(TASKS)))
    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    return per * TASKS / (time.perf_counter() - t0)


async def redis_client(name: str, where: dict[str, Any],
                       tag: str) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Any]]:
    """`where`: the server's tls_url, port, tls_port and the CA file (ca)."""
    if name == "iokernel":
        from iokernel import redis as iok

        c = iok.AsyncClient(where["tls_url"], ssl_ca_certs=where["ca"], client_name=tag)
        return (lambda: c.get(KEY)), c.close
    if name == "iokernel-plain":
        from iokernel import redis as iok

        c = iok.AsyncClient(f"redis://127.0.0.1:{where['port']}/0", client_name=tag)
        return (lambda: c.get(KEY)), c.close
    if name == "redis-py":
        import redis.asyncio as ra

        pool = ra.BlockingConnectionPool(
            host="127.0.0.1", port=where["tls_port"], max_connections=TASKS, client_name=tag,
            connection_class=ra.SSLConnection, ssl_ca_certs=where["ca"],
            timeout=60, socket_connect_timeout=30,  # generous: the machine is shared
        )
        r = ra.Redis(connection_pool=pool)

        async def close() -> None:
            await r.aclose()
            await pool.disconnect()

        return (lambda: r.get(KEY)), close
    if name == "glide":
        from glide import (
            AdvancedGlideClientConfiguration,
            GlideClient,
            GlideClientConfiguration,
            NodeAddress,
            TlsAdvancedConfiguration,
        )

        cfg = GlideClientConfiguration(
            [NodeAddress("127.0.0.1", where["tls_port"])], use_tls=True, client_name=tag,
            advanced_config=AdvancedGlideClientConfiguration(tls_config=TlsAdvancedConfiguration(
                root_pem_cacerts=Path(where["ca"]).read_bytes())),
        )
        g = await GlideClient.create(cfg)
        return (lambda: g.get(KEY)), g.close
    raise ValueError(name)


async def pg_client(name: str, where: dict[str, Any],
                    tag: str) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Any]]:
    """`where`: the server's dsn (sslmode=require) for this measurement."""
    dsn = where["dsn"]
    if name == "iokernel":
        from iokernel import pg

        db = pg.AsyncClient(dsn)
        return (lambda: db.fetchval("SELECT $1::int + 1", 1)), db.close
    if name == "asyncpg":
        import asyncpg

        pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        return (lambda: pool.fetchval("SELECT $1::int + 1", 1)), pool.close
    raise ValueError(name)


async def _close(close: Callable[[], Any]) -> None:
    r = close()
    if asyncio.iscoroutine(r):
        await r


def measure(kind: str, name: str, where: dict[str, Any], tag: str, ops: int) -> float:
    """ops/s of one client (run in a process of its own)."""
    async def go() -> float:
        opener = redis_client if kind == "redis" else pg_client
        call, close = await opener(name, where, tag)
        try:
            return await _drive(call, ops)
        finally:
            await _close(close)

    return asyncio.run(go())


def throughput(rows: dict[str, tuple[Callable[[str], tuple[str, dict[str, Any]]], list[str], int]],
               reps: int) -> dict[str, Any]:
    """Median ops/s per (row, client), interleaved; every measurement in a
    fresh process (measuring.ClientProcesses: glide leaves a thread running
    that would load the next client measured in the same process)."""
    got: dict[tuple[str, str], list[float]] = {}
    with measuring.ClientProcesses(fresh=True) as workers:
        for rep in range(reps):
            for row, (where_of, clients, ops) in rows.items():
                k = rep % len(clients)
                for name in clients[k:] + clients[:k]:
                    tag = f"tlsb-{rep}-{name}"
                    kind, where = where_of(tag)
                    got.setdefault((row, name), []).append(
                        workers.call(name, measure, kind, name, where, tag, ops))
    return {f"{r}|{n}": statistics.median(v) for (r, n), v in got.items()}


# ------------------------------------------------------------ reconnects
async def reconnects(srv: RedisTlsServer, pgs: PgTlsServer, certs: Certs,
                     n: int) -> dict[str, Any]:
    from iokernel import pg
    from iokernel import redis as iok

    out: dict[str, Any] = {}
    tls_url, plain_url = srv.tls_url(), f"redis://127.0.0.1:{srv.port}/0"

    async def new_service(url: str, **kw: Any) -> tuple[float, float]:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(n):
            c = iok.AsyncClient(url, client_name=f"tlsb-new-{time.monotonic_ns()}-{i}", **kw)
            await c.ping()
            await c.close()
        return ((time.perf_counter() - wall0) / n, (time.process_time() - cpu0) / n)

    async def lease(c: Any) -> tuple[float, float]:
        await c.ping()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            async with c.dedicated() as d:
                await d.ping()
        return ((time.perf_counter() - wall0) / n, (time.process_time() - cpu0) / n)

    out["full (new service)"] = await new_service(tls_url, ssl_ca_certs=certs.ca)
    out["plain (new service)"] = await new_service(plain_url)
    c = iok.AsyncClient(tls_url, ssl_ca_certs=certs.ca, client_name="tlsb-lease")
    out["resumed (lease)"] = await lease(c)
    st = c.stats()
    out["redis_share"] = (st["tls_resumed"], st["tls_handshakes"] - 1)
    await c.close()
    p = iok.AsyncClient(plain_url, client_name="tlsb-lease-plain")
    out["plain (lease)"] = await lease(p)
    await p.close()
    db = pg.AsyncClient(pgs.dsn(sslmode="require", application_name="tlsb-pg-lease"))
    await db.fetchval("SELECT 1")
    for _ in range(min(n, 50)):
        async with db.transaction():
            pass
    st = db.stats()
    out["pg_share"] = (st["tls_resumed"], st["tls_handshakes"])
    await db.close()
    return out


# ------------------------------------------------------------ report
def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def report(tp: dict[str, Any], rc: dict[str, Any], args: argparse.Namespace,
           loads: tuple[str, str]) -> str:
    lines = [
        f"TLS benchmark ({'quick' if args.quick else 'full'}), {args.reps} interleaved "
        f"repetitions, medians. {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"Load average (1/5/15 min) before: {loads[0]}, after: {loads[1]} "
        f"({os.cpu_count()} CPUs, shared).",
        "",
        "| case | client | ops/s | iokernel / client |",
        "|---|---|---:|---:|",
    ]
    for key, v in tp.items():
        row, name = key.split("|")
        base = tp.get(f"{row}|iokernel", v)
        lines.append(f"| {row} | {name} | {v:,.0f} | {base / v:.2f}x |")
    lines += [
        "",
        "| reconnect (Redis, connect + HELLO + PING) | wall ms | CPU ms (client process) |",
        "|---|---:|---:|",
    ]
    for k in ("full (new service)", "plain (new service)", "resumed (lease)", "plain (lease)"):
        wall, cpu = rc[k]
        lines.append(f"| {k} | {wall * 1e3:.2f} | {cpu * 1e3:.2f} |")
    r, h = rc["redis_share"]
    pr, ph = rc["pg_share"]
    lines += [
        "",
        f"Redis reconnects that resumed the TLS session: {r} of {h} "
        f"({100.0 * r / max(h, 1):.0f} %).",
        f"PostgreSQL: {pr} of {ph} handshakes resumed (the server disables session "
        "tickets and its session cache, so every handshake is full).",
    ]
    return "\n".join(lines) + "\n"


def plot(tp: dict[str, Any], rc: dict[str, Any], path: Path, title: str) -> None:
    """Left: throughput per client (Redis and PostgreSQL over TLS, log
    scale, with iokernel's ratio); right: reconnect wall time and CPU."""
    colors = {"iokernel": "tab:blue", "redis-py": "tab:orange", "glide": "tab:green",
              "iokernel-plain": "lightsteelblue", "asyncpg": "tab:red"}
    fig, (ax, ax2) = harness.figure([2.2, 1], (13, 5))
    keys = list(tp)
    vals = [tp[k] for k in keys]
    for i, k in enumerate(keys):
        row, name = k.split("|")
        base = tp.get(f"{row}|iokernel", tp[k])
        ax.bar(i, tp[k], color=colors.get(name, "gray"))
        ax.annotate(f"{tp[k]:,.0f}\n{base / tp[k]:.2f}x", (i, tp[k]), ha="center",
                    va="bottom", fontsize=7)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels([k.replace("|", "\n").replace(", 50 tasks", "")
                        .replace("iokernel-plain", "iokernel\n(plain text)") for k in keys],
                       fontsize=7)
    ax.set_yscale("log")
    ax.set_ylim(min(vals) / 3, max(vals) * 4)
    ax.set_ylabel("ops/s (median), 50 asyncio tasks")
    ax.set_title(f"GET / SELECT over TLS: iokernel / peer ratio on each bar\n{title}",
                 fontsize=9)
    ax.grid(True, axis="y", which="both", alpha=0.3)
    names = ["full (new service)", "plain (new service)", "resumed (lease)", "plain (lease)"]
    x = range(len(names))
    ax2.bar([i - 0.2 for i in x], [rc[n][0] * 1e3 for n in names], 0.4, label="wall ms")
    ax2.bar([i + 0.2 for i in x], [rc[n][1] * 1e3 for n in names], 0.4, label="CPU ms")
    ax2.set_xticks(list(x))
    ax2.set_xticklabels([n.replace(" (", "\n(") for n in names], fontsize=7)
    ax2.set_title("Redis reconnect (connect + HELLO + PING), median", fontsize=9)
    ax2.legend(fontsize=8)
    ax2.grid(True, axis="y", alpha=0.3)
    harness.save_figure(fig, path)


async def main_async(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    certs = make_certs(Path(tempfile.mkdtemp(prefix="iok-tlsbench-")) / "certs")
    Path(certs.dir).parent.chmod(0o755)
    scale = 0.2 if args.quick else 1.0
    with RedisTlsServer(certs, certs.server) as srv, PgTlsServer(certs, certs.server) as pgs:
        srv.command_raw("SET", KEY, VALUE)

        redis_at = {"tls_url": srv.tls_url(), "port": srv.port, "tls_port": srv.tls_port,
                    "ca": certs.ca}

        def r_where(tag: str) -> tuple[str, dict[str, Any]]:
            return "redis", redis_at

        def p_where(tag: str) -> tuple[str, dict[str, Any]]:
            return "pg", {"dsn": pgs.dsn(sslmode="require", application_name=tag)}

        rows = {
            "Redis GET, 50 tasks, TLS": (
                r_where, ["iokernel", "redis-py", "glide", "iokernel-plain"],
                int(60_000 * scale)),
            "PostgreSQL SELECT, 50 tasks, TLS": (p_where, ["iokernel", "asyncpg"],
                                                 int(30_000 * scale)),
        }
        tp = throughput(rows, args.reps)
        rc = await reconnects(srv, pgs, certs, int(200 * scale))
    return tp, rc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 2 if args.quick else 5
    before = load()
    tp, rc = asyncio.run(main_async(args))
    text = report(tp, rc, args, (before, load()))
    out = HERE / "results" / ("tls-quick.md" if args.quick else "tls.md")
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    png = HERE / "results" / "tls-quick.png" if args.quick else ROOT / "docs/img/bench-tls.png"
    plot(tp, rc, png, text.splitlines()[0] + "; load " + before)
    print(text)
    print(f"plot: {harness.rel(png)}")


if __name__ == "__main__":
    main()
