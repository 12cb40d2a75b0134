"""How fast clients follow a name that moves, and what it costs: iokernel
against redis-py and asyncpg in the same run.

Set-up (all real, on loopback): dnsmasq serving a hosts file (TTL 1 s) that
maps ``move.test`` to 127.0.0.2, redis-server and PostgreSQL on 127.0.0.2
and on 127.0.0.3 (same port), each telling who it is (Redis: ``GET who``;
PostgreSQL: ``inet_server_addr()``). 50 asyncio tasks keep each client busy.

Scenarios, each client in turn with a fresh client:

* ``move``: the name moves to 127.0.0.3 and the old server stays up (a
  blue/green switch, a scale-out): how long until every new request goes to
  the new address, and the errors meanwhile (8 s window).
* ``move+stop``: the name moves, and the old server stops 3 s later (a
  rollout whose old pods terminate after a grace period, a failover).

The peers resolve only when they open a connection, through
``getaddrinfo``; as the system resolver here cannot be pointed at dnsmasq
without changing the machine, this process's ``socket.getaddrinfo`` asks
dnsmasq for ``*.test`` names itself, uncached, as glibc would with dnsmasq
in ``/etc/resolv.conf``. iokernel asks it through
``iokernel.configure(dns_servers=...)``.

Idle cost: 10 clients, each following its own name (TTL 5 s), idle (no
health-check pings), for 20 s: CPU time of the kernel thread and of the
process, and the DNS queries dnsmasq logged; next to 10 idle clients on IP
addresses (nothing followed) in the same run.

Usage:
    python bench/dns_follow.py            # ~3 min
    python bench/dns_follow.py --quick    # shorter windows, no idle part
Each client and scenario runs --reps times (3), the change at a random
phase of the clients' refresh timers. Writes bench/results/dns-latest.json
and .md and the plot docs/img/bench-dns.png (quick: dns-quick.* and the
plot in bench/results/). Benchmarks, not tests: nothing here asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import socket
import statistics
import struct
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import iokernel
from iokernel import pg, redis
from tests.servers.dns_server import DnsServer, dns_query
from tests.servers.postgres_server import PG_DB, PG_PASSWORD, PG_USER, PostgresServer
from tests.servers.process import free_port
from tests.servers.redis_server import RedisServer

A, B = "127.0.0.2", "127.0.0.3"
WHO = {A: "a", B: "b"}
TASKS = 50

# ------------------------------------------------- the peers' resolver
_real_getaddrinfo = socket.getaddrinfo
_DNS: tuple[str, int] | None = None


def _a_records(answer: bytes) -> list[str]:
    qd, an = struct.unpack(">HH", answer[4:8])
    i = 12
    for _ in range(qd):
        while answer[i]:
            i += answer[i] + 1
        i += 5
    out = []
    for _ in range(an):
        i += 2 if answer[i] & 0xC0 == 0xC0 else len(answer[i:].split(b"\0", 1)[0]) + 1
        rtype, _, _, rdlen = struct.unpack(">HHIH", answer[i:i + 10])
        i += 10
        if rtype == 1 and rdlen == 4:
            out.append(socket.inet_ntoa(answer[i:i + 4]))
        i += rdlen
    return out


def _getaddrinfo(host: Any, port: Any, *args: Any, **kw: Any) -> Any:
    if _DNS and isinstance(host, str) and host.endswith(".test"):
        ips = _a_records(dns_query(_DNS[0], _DNS[1], host))
        if not ips:
            raise socket.gaierror(socket.EAI_NONAME, f"{host}: no A record")
        return [r for ip in ips for r in _real_getaddrinfo(ip, port, *args, **kw)]
    return _real_getaddrinfo(host, port, *args, **kw)


socket.getaddrinfo = _getaddrinfo


# ------------------------------------------------------------ clients
async def make(kind: str, port: int) -> tuple[Any, Any, Any]:
    """(ask-who coroutine function, close, label) for a fresh client."""
    if kind == "iokernel-redis":
        r = redis.AsyncClient(f"redis://move.test:{port}/0")
        return (lambda: r.get("who")), r.close, "iokernel (Redis)"
    if kind == "redis-py":
        import redis.asyncio as aioredis

        rp = aioredis.Redis(host="move.test", port=port)
        return (lambda: rp.get("who")), rp.aclose, "redis-py asyncio"
    dsn = f"postgresql://{PG_USER}:{PG_PASSWORD}@move.test:{port}/{PG_DB}"
    sql = "SELECT host(inet_server_addr())"
    if kind == "iokernel-pg":
        c = pg.AsyncClient(dsn)
        return (lambda: c.fetchval(sql)), c.close, "iokernel (PostgreSQL)"
    import asyncpg

    pool = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
    return (lambda: pool.fetchval(sql)), pool.close, "asyncpg pool (10)"


def who(v: Any) -> str:
    if isinstance(v, bytes):
        return v.decode()
    return WHO.get(str(v), str(v))


async def scenario(kind: str, name: str, dns: DnsServer, old: Any, port: int,
                   window: float, stop_after: float | None) -> dict[str, Any]:
    dns.set_hosts({"move.test": [A]})
    await asyncio.sleep(1.5)  # every cache has expired
    ask, close, label = await make(kind, port)
    done: list[tuple[float, str]] = []
    errors: list[tuple[float, str]] = []
    stop = False

    async def one() -> None:
        while not stop:
            t0 = time.monotonic()
            try:
                v = await ask()
            except Exception as e:
                errors.append((t0, type(e).__name__))
                await asyncio.sleep(0.01)
                continue
            done.append((t0, who(v)))

    tasks = [asyncio.create_task(one()) for _ in range(TASKS)]
    # A random phase against the clients' refresh timers.
    await asyncio.sleep(2.0 + random.random())
    await asyncio.to_thread(dns.set_hosts, {"move.test": [B]})
    t_move = time.monotonic()
    if stop_after is not None:
        await asyncio.sleep(stop_after)
        await asyncio.to_thread(old.stop)
    await asyncio.sleep(window - (stop_after or 0))
    stop = True
    await asyncio.gather(*tasks)
    await close()
    if stop_after is not None:
        await asyncio.to_thread(old.restart)
        if isinstance(old, RedisServer):
            old.command_raw("SET", "who", "a")
    settled = None
    for t, w in sorted(d for d in done if d[0] >= t_move)[::-1]:
        if w != "b":
            break
        settled = t
    after = [d for d in done if d[0] >= t_move]
    return {
        "client": kind, "label": label, "scenario": name,
        "follow_s": None if settled is None else round(settled - t_move, 3),
        "errors": len([e for e in errors if e[0] >= t_move - 0.1]),
        "error_types": sorted({e[1] for e in errors}),
        "requests": len(after),
        "timeline": [(round(t - t_move, 3), w) for t, w in done]
        + [(round(t - t_move, 3), "error") for t, _ in errors],
    }


# --------------------------------------------------------------- idle
def thread_cpu(name: str = "iokernel") -> tuple[float, int]:
    """CPU seconds and times scheduled of the named thread(s), from
    /proc/self/task/*/schedstat (nanosecond resolution)."""
    cpu, runs = 0.0, 0
    for t in Path("/proc/self/task").iterdir():
        try:
            if (t / "comm").read_text().strip() == name:
                f = (t / "schedstat").read_text().split()
                cpu += int(f[0]) / 1e9
                runs += int(f[2])
        except OSError:
            pass
    return cpu, runs


async def idle_cost(port: int, seconds: float) -> dict[str, Any]:
    names = [f"n{i}.test" for i in range(10)]
    dns = DnsServer(host_records=[(n, A, 5) for n in names])
    dns.start()
    iokernel.configure(dns_servers=[dns.address])
    out: dict[str, Any] = {"seconds": seconds}
    try:
        for label, hosts in (("10 clients on IP addresses", [A] * 10), ("10 followed names", names)):
            clients = [redis.AsyncClient(f"redis://{h}:{port}/{i}", health_check_interval=None)
                       for i, h in enumerate(hosts)]
            for c in clients:
                await c.get("who")
            await asyncio.sleep(1.0)
            q0 = sum(dns.query_count(n, t) for n in names for t in ("A", "AAAA"))
            (k0, w0), p0 = thread_cpu(), time.process_time()
            await asyncio.sleep(seconds)
            (k1, w1), p1 = thread_cpu(), time.process_time()
            q1 = sum(dns.query_count(n, t) for n in names for t in ("A", "AAAA"))
            out[label] = {"kernel_thread_cpu_ms": round((k1 - k0) * 1000, 2),
                          "kernel_thread_runs": w1 - w0,
                          "process_cpu_ms": round((p1 - p0) * 1000, 1),
                          "dns_queries": q1 - q0}
            for c in clients:
                await c.close()
    finally:
        iokernel.configure(dns_servers=None)
        dns.stop(cleanup=True)
    return out


# ------------------------------------------------------------- report
def report(res: dict[str, Any]) -> str:
    lines = [f"{res['reps']} runs each, {res['tasks']} tasks, window {res['window']:.0f} s after "
             "the change:", "",
             "| scenario | client | followed after (median / worst) | errors (all runs) |",
             "|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in res["runs"]:
        groups.setdefault((r["scenario"], r["label"]), []).append(r)
    for (scen, label), rs in groups.items():
        fs = [r["follow_s"] for r in rs]
        if any(f is None for f in fs):
            f = f"not within {res['window']:.0f} s in {sum(f is None for f in fs)} of {len(fs)}"
        else:
            f = f"{statistics.median(fs):.2f} s / {max(fs):.2f} s"
        errs = sum(r["errors"] for r in rs)
        kinds = sorted({k for r in rs for k in r["error_types"]})
        lines.append(f"| {scen} | {label} | {f} | {errs}"
                     f"{' (' + ', '.join(kinds) + ')' if errs else ''} |")
    if "idle" in res:
        i = res["idle"]
        lines += ["", f"Idle, {i['seconds']:.0f} s:", "",
                  "| clients | kernel thread CPU | times the kernel thread ran | process CPU "
                  "(all threads) | DNS queries |", "|---|---|---|---|---|"]
        for k, v in i.items():
            if isinstance(v, dict):
                lines.append(f"| {k} | {v['kernel_thread_cpu_ms']} ms | {v['kernel_thread_runs']} "
                             f"| {v['process_cpu_ms']} ms | {v['dns_queries']} |")
    return "\n".join(lines) + "\n"


def plot(res: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in res["runs"] if r["scenario"] == "move+stop" and r["rep"] == 0]
    fig, axes = plt.subplots(len(runs), 1, figsize=(9, 2.1 * len(runs)), sharex=True)
    for ax, r in zip(axes, runs, strict=True):
        for w, color in (("a", "tab:blue"), ("b", "tab:orange"), ("error", "tab:red")):
            bins: dict[int, int] = {}
            for t, who_ in r["timeline"]:
                if who_ == w:
                    bins[int(t * 10 // 1)] = bins.get(int(t * 10 // 1), 0) + 1
            xs = [x / 10 for x in range(-20, int(res["window"] * 10))]
            ax.plot(xs, [bins.get(int(x * 10), 0) * 10 for x in xs], color=color,
                    label={"a": "127.0.0.2 (old)", "b": "127.0.0.3 (new)", "error": "errors"}[w])
        ax.axvline(0, color="grey", ls="--", lw=0.8)
        ax.axvline(3, color="black", ls=":", lw=0.8)
        ax.set_title(f"{r['label']}: {r['errors']} errors", fontsize=9)
        ax.set_ylabel("req/s")
    axes[0].legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("seconds since the DNS change (dotted: old server stops)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


async def main() -> int:
    global _DNS
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--from-json", help="redo the report and plot from a results file")
    args = ap.parse_args()
    reps = 1 if args.quick else args.reps
    if args.from_json:
        res = json.loads(Path(args.from_json).read_text())
        plot(res, ROOT / "docs" / "img" / "bench-dns.png")
        print(report(res))
        return 0
    window = 6.0 if args.quick else 8.0
    rport = free_port(A)
    pport = free_port(A)
    dns = DnsServer(hosts={"move.test": [A]})
    reds = {ip: RedisServer(host=ip, port=rport) for ip in (A, B)}
    pgs = {ip: PostgresServer(host=ip, port=pport) for ip in (A, B)}
    servers: list[Any] = [dns, *reds.values(), *pgs.values()]
    res: dict[str, Any] = {"window": window, "tasks": TASKS, "reps": reps, "runs": []}
    try:
        for s in servers:
            s.start()
        for ip, s in reds.items():
            s.command_raw("SET", "who", WHO[ip])
        _DNS = (dns.host, dns.port)
        iokernel.configure(dns_servers=[dns.address])
        for rep in range(reps):
            for name, stop_after in (("move", None), ("move+stop", 3.0)):
                for kind in ("iokernel-redis", "redis-py", "iokernel-pg", "asyncpg"):
                    old = reds[A] if "redis" in kind else pgs[A]
                    port = rport if "redis" in kind else pport
                    r = await scenario(kind, name, dns, old, port, window, stop_after)
                    r["rep"] = rep
                    print(f"{rep} {name:10} {r['label']:24} follow {r['follow_s']} s, "
                          f"{r['errors']} errors, {r['requests']} requests", flush=True)
                    res["runs"].append(r)
        iokernel.configure(dns_servers=None)
        if not args.quick:
            res["idle"] = await idle_cost(rport, 20.0)
            print(json.dumps(res["idle"]), flush=True)
    finally:
        for s in servers:
            s.stop(cleanup=True)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / ("dns-quick.json" if args.quick else "dns-latest.json")).write_text(json.dumps(res))
    md = report(res)
    (out / ("dns-quick.md" if args.quick else "dns-latest.md")).write_text(md)
    plot(res, ROOT / "docs" / "img" / "bench-dns.png" if not args.quick else out / "dns-quick.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
