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
median is reported, with ratios to iokernel. Certificates are made with
openssl (tests/tls/certs.py); servers are tests/tls/servers.py's.
Benchmarks, not tests: nothing here asserts on timings.

Usage:
    python bench/tls_bench.py            # about 2 minutes on 2 cores
    python bench/tls_bench.py --quick    # about 30 s
Writes bench/results/tls.md (quick: tls-quick.md) and prints it.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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


async def redis_client(name: str, srv: RedisTlsServer, certs: Certs,
                       tag: str) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Any]]:
    if name == "iokernel":
        from iokernel import redis as iok

        c = iok.AsyncClient(srv.tls_url(), ssl_ca_certs=certs.ca, client_name=tag)
        return (lambda: c.get(KEY)), c.close
    if name == "iokernel-plain":
        from iokernel import redis as iok

        c = iok.AsyncClient(f"redis://127.0.0.1:{srv.port}/0", client_name=tag)
        return (lambda: c.get(KEY)), c.close
    if name == "redis-py":
        import redis.asyncio as ra

        pool = ra.BlockingConnectionPool(
            host="127.0.0.1", port=srv.tls_port, max_connections=TASKS, client_name=tag,
            connection_class=ra.SSLConnection, ssl_ca_certs=certs.ca,
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
            [NodeAddress("127.0.0.1", srv.tls_port)], use_tls=True, client_name=tag,
            advanced_config=AdvancedGlideClientConfiguration(tls_config=TlsAdvancedConfiguration(
                root_pem_cacerts=Path(certs.ca).read_bytes())),
        )
        g = await GlideClient.create(cfg)
        return (lambda: g.get(KEY)), g.close
    raise ValueError(name)


async def pg_client(name: str, srv: PgTlsServer,
                    tag: str) -> tuple[Callable[[], Awaitable[Any]], Callable[[], Any]]:
    dsn = srv.dsn(sslmode="require", application_name=tag)
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


async def throughput(rows: dict[str, tuple[Any, list[str], int]], reps: int) -> dict[str, Any]:
    """Median ops/s per (row, client), interleaved."""
    got: dict[tuple[str, str], list[float]] = {}
    for rep in range(reps):
        for row, (opener, clients, ops) in rows.items():
            k = rep % len(clients)
            for name in clients[k:] + clients[:k]:
                call, close = await opener(name, f"tlsb-{rep}-{name}")
                try:
                    got.setdefault((row, name), []).append(await _drive(call, ops))
                finally:
                    await _close(close)
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
def report(tp: dict[str, Any], rc: dict[str, Any], args: argparse.Namespace) -> str:
    lines = [
        f"TLS benchmark ({'quick' if args.quick else 'full'}), {args.reps} interleaved "
        f"repetitions, medians. {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
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


async def main_async(args: argparse.Namespace) -> str:
    certs = make_certs(Path(tempfile.mkdtemp(prefix="iok-tlsbench-")) / "certs")
    Path(certs.dir).parent.chmod(0o755)
    scale = 0.2 if args.quick else 1.0
    with RedisTlsServer(certs, certs.server) as srv, PgTlsServer(certs, certs.server) as pgs:
        srv.command_raw("SET", KEY, VALUE)

        async def r_open(name: str, tag: str) -> Any:
            return await redis_client(name, srv, certs, tag)

        async def p_open(name: str, tag: str) -> Any:
            return await pg_client(name, pgs, tag)

        rows = {
            "Redis GET, 50 tasks, TLS": (
                r_open, ["iokernel", "redis-py", "glide", "iokernel-plain"],
                int(60_000 * scale)),
            "PostgreSQL SELECT, 50 tasks, TLS": (p_open, ["iokernel", "asyncpg"],
                                                 int(30_000 * scale)),
        }
        tp = await throughput(rows, args.reps)
        rc = await reconnects(srv, pgs, certs, int(200 * scale))
    return report(tp, rc, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=None)
    args = ap.parse_args()
    if args.reps is None:
        args.reps = 2 if args.quick else 5
    text = asyncio.run(main_async(args))
    out = HERE / "results" / ("tls-quick.md" if args.quick else "tls.md")
    out.parent.mkdir(exist_ok=True)
    out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
