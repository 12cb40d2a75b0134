"""iokernel's PostgreSQL client against asyncpg, psycopg 3 and psqlpy, interleaved,
with pgbench on the same server as the ceiling.

Scenarios (asyncio, one shared client or pool per measurement):

* ``SELECT $1::int + 1`` from 1, 50 and 500 concurrent tasks;
* a primary-key lookup on pgbench_accounts (``pgbench -i -s 10``: 1,000,000
  rows) from 50 tasks, with random keys;
* executemany of 10,000 rows (int, text, float8) into an unlogged table, one
  caller (twice per measurement; throughput in rows/s). Its extra client, the
  floor (bench/pg_floor.py, ``--no-floor`` to leave it out), is the cheapest
  possible one: raw protocol, every row's Bind/Execute encoded before the
  timer. floor / asyncpg is the best ratio against asyncpg that any client
  sending one Bind and Execute per row can reach on this server.

Peers: asyncpg (``create_pool``, 10 connections), psycopg 3
(``AsyncConnectionPool``, 10 connections, auto-prepare), psqlpy
(``ConnectionPool``, max 10). iokernel: one ``pg.AsyncClient`` with its
defaults. Ceiling: ``pgbench -S -M prepared -c 10 -j 2 -T 10`` (select-only
primary-key lookups, C client, prepared statements) on the same server, once
per repetition.

Each repetition runs every scenario and every client of it in turn, the order
rotated each time (A B C D, B C D A, ...), so noise hits all alike. Each
measurement opens a fresh client with its own ``application_name``, warms it
up at full concurrency (and checks its answers), times the ops, and counts its
connections in ``pg_stat_activity`` (sampled every 50 ms from another
connection while timed; max). CPU per op: this process (all threads) and the
PostgreSQL server (all its processes, when started here).

Usage:
    python bench/pg_bench.py             # full run, ~4-5 min on 2 cores
    python bench/pg_bench.py --quick     # ~1 min: fewer ops, 3 repetitions, pgbench -T 5
    python bench/pg_bench.py --only select-50 --reps 7 --peers iokernel,asyncpg
    python bench/pg_bench.py --from-json bench/results/pg-latest.json   # redo report + plot

Big results (a 1,000,000-row fetch and cursor, with peak RSS) and
copy_records_to_table are in bench/pg_bulk.py: each measurement there runs
in its own process.

Starts its own PostgreSQL (tests/servers PostgresServer) unless
$IOKERNEL_BENCH_PG_DSN names one. Writes bench/results/pg-latest.json and
.md (quick: pg-quick.*) and the plot docs/img/bench-pg.png (quick: in
bench/results/). Benchmarks, not tests: nothing here asserts on timings.

This file holds the PostgreSQL cases, the pgbench ceiling and the goals; the
servers, the interleaved run, CPU accounting, tables, plot plumbing and
command line are bench/harness.py's, shared with run.py.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import harness
import measuring
from harness import fmt_ops
from pg_cases import FLOOR, PEERS, POOL, SCALE, Admin, Scenario, available_peers, measure, scenarios


# ------------------------------------------------------------------ the pgbench ceiling
def pgbench_bin() -> str:
    found = shutil.which("pgbench")
    if found:
        return found
    from tests.servers import pg_bindir

    return str(pg_bindir() / "pgbench")


def pgbench_env(dsn: str) -> tuple[list[str], dict[str, str]]:
    u = urlsplit(dsn)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    from urllib.parse import unquote

    env["PGPASSWORD"] = unquote(u.password or "")
    args = ["-h", u.hostname or "127.0.0.1", "-p", str(u.port or 5432),
            "-U", unquote(u.username or "postgres"), unquote(u.path.lstrip("/") or "postgres")]
    return args, env


def pgbench_init(dsn: str) -> float:
    conn, env = pgbench_env(dsn)
    t0 = time.monotonic()
    subprocess.run([pgbench_bin(), "-i", "-s", str(SCALE), "-q", *conn], env=env, check=True,
                   capture_output=True, timeout=600)
    return time.monotonic() - t0


def pgbench_run(dsn: str, seconds: int, postmaster: int | None) -> dict[str, Any]:
    conn, env = pgbench_env(dsn)
    argv = [pgbench_bin(), "-S", "-M", "prepared", "-c", str(POOL), "-j", "2",
            "-T", str(seconds), "-n", *conn]
    cpu0, srv0 = _children_cpu(), measuring.process_tree_cpu(postmaster)
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True,
                         timeout=seconds + 120).stdout
    cpu1, srv1 = _children_cpu(), measuring.process_tree_cpu(postmaster)
    m = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", out)
    n = re.search(r"number of transactions actually processed: (\d+)", out)
    if not m:
        raise RuntimeError(f"cannot read pgbench's tps from:\n{out}")
    txs = int(n.group(1)) if n else None
    return {
        "tps": float(m.group(1)),
        "transactions": txs,
        "cpu_us_per_op": (cpu1 - cpu0) * 1e6 / txs if txs else None,
        "server_cpu_us_per_op": ((srv1 - srv0) * 1e6 / txs
                                 if txs and srv0 is not None and srv1 is not None else None),
        "command": " ".join(["pgbench", *argv[1:]]),
    }


def _children_cpu() -> float:
    t = os.times()
    return t.children_user + t.children_system


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--peers", default=",".join(PEERS), help=f"comma list of {', '.join(PEERS)}")
    ap.add_argument("--loop", default="asyncio", choices=("asyncio", "uvloop"))
    ap.add_argument("--no-floor", action="store_true",
                    help="leave out executemany's floor client (bench/pg_floor.py)")
    ap.add_argument("--pgbench-seconds", type=int, default=None,
                    help="pgbench -T per repetition (default 10, quick 5; 0: no ceiling)")


def run(r: harness.Run) -> dict[str, Any]:
    args = r.args
    pgbench_s = args.pgbench_seconds if args.pgbench_seconds is not None else (
        5 if args.quick else 10)
    peers, missing = available_peers([p.strip() for p in args.peers.split(",") if p.strip()])
    for p, why in missing.items():
        print(f"# peer {p} unavailable: {why}", file=sys.stderr)
    if not peers:
        raise harness.UsageError("no peer available")
    scs = harness.select(scenarios(r.scale), args.only, "scenario")
    floor = not args.no_floor

    with harness.server("postgres", "IOKERNEL_BENCH_PG_DSN") as srv:
        dsn, postmaster = srv.url, srv.pid
        admin = Admin(dsn)
        try:
            t_init = pgbench_init(dsn)
            admin.sql("DROP TABLE IF EXISTS bench_many")
            admin.sql("CREATE UNLOGGED TABLE bench_many (a int, b text, c float8)")
            admin.sql("VACUUM ANALYZE")
            env = environment(dsn, srv.how, admin)
            env["pgbench_init_s"] = round(t_init, 1)
            env["loop"] = args.loop
            env["peers_missing"] = missing
            print(f"# {r.command}\n# {srv.how}; PostgreSQL {env['postgres']}; "
                  f"{env['cpus']} CPUs; {r.reps} reps; pgbench -i -s {SCALE} took {t_init:.1f}s; "
                  f"load {env['loadavg_start']}", file=sys.stderr, flush=True)
            ceiling: list[dict[str, Any]] = []

            def pgbench_ceiling(rep: int) -> str | None:
                if pgbench_s <= 0:
                    return None
                c = pgbench_run(dsn, pgbench_s, postmaster)
                ceiling.append(c)
                return f"pgbench -S -c {POOL}: {c['tps']:,.0f} tps"

            results = harness.interleave(
                scs, lambda sc: [*peers, FLOOR] if floor and sc.kind == "many" else peers,
                r.reps,
                lambda sc, client: measure(sc, client, dsn, admin, postmaster, args.loop),
                before_rep=pgbench_ceiling, keep_going=True, verbose=r.verbose, env=env)
        finally:
            admin.close()

    summ = harness.summaries(results)
    ceiling_tps = statistics.median(c["tps"] for c in ceiling) if ceiling else None
    return {
        "command": r.command, "reps": r.reps, "scale": r.scale, "environment": env,
        "pool_size": POOL, "peers": peers, "ceiling": ceiling, "ceiling_tps_median": ceiling_tps,
        "scenarios": [{"id": s.id, "scenario": s.label, "kind": s.kind, "concurrency": s.conc,
                       "ops": s.ops, "clients": summ[s.id]} for s in scs],
        "goals": goals(summ, ceiling_tps)[1],
    }


# ------------------------------------------------------------------ reporting
def from_json(data: dict[str, Any]) -> tuple[list[Scenario], dict[str, dict[str, dict[str, Any]]],
                                             list[str]]:
    """The scenarios, their per-client summaries and the peers, back from the results."""
    scs = [Scenario(s["id"], s["scenario"], s["kind"], s["concurrency"], s["ops"])
           for s in data["scenarios"]]
    summ = {s["id"]: s["clients"] for s in data["scenarios"]}
    peers = data.get("peers") or list(data["scenarios"][0]["clients"])
    return scs, summ, peers


def goals(summ: dict[str, dict[str, dict[str, Any]]], ceiling_tps: float | None
          ) -> tuple[list[str], list[dict[str, Any]]]:
    items: list[dict[str, Any]] = []

    def get(sid: str, peer: str, key: str = "median") -> Any:
        return summ.get(sid, {}).get(peer, {}).get(key)

    iok, apg = get("select-50", "iokernel"), get("select-50", "asyncpg")
    conns = get("select-50", "iokernel", "conns_server_max")
    if iok and apg:
        r = iok / apg
        items.append({"goal": "SELECT $1::int + 1 at 50 tasks: ≥ 5× asyncpg with ≤ 4 connections",
                      "measured": f"{r:.2f}×, {conns} connection(s)", "ratio": r,
                      "connections": conns, "met": r >= 5 and conns is not None and conns <= 4})
    iok, apg, flo = get("many", "iokernel"), get("many", "asyncpg"), get("many", FLOOR)
    if iok and apg:
        r = iok / apg
        items.append({"goal": "executemany of 10,000 rows: ≥ 1× asyncpg",
                      "measured": f"{r:.2f}×", "ratio": r, "met": r >= 1})
        # Issue 11's goal; the floor client's ratio is the best any client reaches.
        best = f"; the floor: {flo / apg:.2f}×, iokernel = {iok / flo:.0%} of it" if flo else ""
        items.append({"goal": "executemany of 10,000 rows: ≥ 1.5× asyncpg (issue 11)",
                      "measured": f"{r:.2f}×{best}", "ratio": r,
                      "floor_ratio": flo / apg if flo else None, "met": r >= 1.5})
    iok = get("pk-50", "iokernel")
    if iok and ceiling_tps:
        frac = iok / ceiling_tps
        items.append({"goal": "primary-key lookups at 50 tasks: fraction of the pgbench ceiling "
                              "(reported, no target)",
                      "measured": f"{frac * 100:.0f}% ({fmt_ops(iok)} of {fmt_ops(ceiling_tps)})",
                      "ratio": frac, "met": None})
    out = ["| goal | measured | status |", "|---|--:|:-:|"]
    for g in items:
        status = "reported" if g["met"] is None else ("met" if g["met"] else "**missed**")
        out.append(f"| {g['goal']} | {g['measured']} | {status} |")
    return out, items


def ceiling_table(peers: list[str], summ: dict[str, dict[str, dict[str, Any]]],
                  ceiling: list[dict[str, Any]]) -> list[str]:
    if not ceiling:
        return []
    tps = statistics.median(c["tps"] for c in ceiling)
    out = [f"pgbench ceiling: `{ceiling[0]['command'].split(' -h ')[0]}` → median "
           f"**{fmt_ops(tps)} tps** over {len(ceiling)} runs "
           f"({', '.join(fmt_ops(c['tps']) for c in ceiling)}).", "",
           "| client | PK lookups/s, 50 tasks | fraction of the pgbench ceiling |",
           "|---|--:|--:|"]
    for p in peers:
        m = summ.get("pk-50", {}).get(p, {}).get("median")
        out.append(f"| {p} | {fmt_ops(m)} | " + ("-" if not m else f"{m / tps * 100:.0f}%") + " |")
    return out


def floor_table(peers: list[str], summ: dict[str, dict[str, dict[str, Any]]]) -> list[str]:
    """executemany's clients against its floor client: rows/s, ratios, CPU per row."""
    many = summ.get("many", {})
    flo = many.get(FLOOR, {}).get("median")
    if not flo:
        return []
    apg = many.get("asyncpg", {}).get("median")
    out = ["executemany against its floor (`bench/pg_floor.py`: the cheapest possible client, "
           "every row's Bind/Execute and the Sync encoded before the timer; timed: write, read "
           "to ReadyForQuery, check the replies):", "",
           "| client | rows/s | / asyncpg | / floor | CPU µs/row, this process | "
           "CPU µs/row, server | server busy | spread |", "|---|--:|--:|--:|--:|--:|--:|--:|"]

    def us(s: dict[str, Any], key: str) -> str:
        v = s.get(key + "_median")
        return "-" if v is None else f"{v:.2f}"

    def busy(s: dict[str, Any]) -> str:
        # The server's CPU seconds per second while timed (median over repetitions):
        # 100% means one server core never waited (for this client or for a CPU).
        xs = [c * r / 1e6 for c, r in zip(s.get("server_cpu_us_per_op", []),
                                           s.get("ops_per_s", [])) if c is not None]
        return f"{statistics.median(xs):.0%}" if xs else "-"

    for p in [*peers, FLOOR]:
        s = many.get(p, {})
        m = s.get("median")
        out.append(f"| {p} | {fmt_ops(m)} | {harness.ratio(m, apg)} | {harness.ratio(m, flo)} | "
                   f"{us(s, 'cpu_us_per_op')} | {us(s, 'server_cpu_us_per_op')} | {busy(s)} | "
                   + ("-" if "spread" not in s else f"{s['spread'] * 100:.0f}%") + " |")

    def per_rep(a: str, b: str) -> str:
        xs, ys = many.get(a, {}).get("ops_per_s", []), many.get(b, {}).get("ops_per_s", [])
        if not xs or len(xs) != len(ys):
            return "-"
        return ", ".join(f"{x / y:.2f}" for x, y in zip(xs, ys))

    out += ["", "Server busy: the server's CPU time per second of the timed run (all its "
                "processes; 100%: a core that never waited, for the client or for a CPU).", "",
            f"Per repetition: floor / asyncpg {per_rep(FLOOR, 'asyncpg')}; "
                f"iokernel / floor {per_rep('iokernel', FLOOR)}."]
    if apg:
        out += ["", f"floor / asyncpg = **{flo / apg:.2f}×** is the best ratio any client "
                    "sending one Bind and Execute per row can reach against this server in this "
                    "run"
                + ("" if "iokernel" not in many or not many["iokernel"].get("median") else
                   f"; iokernel reaches {many['iokernel']['median'] / flo:.0%} of the floor "
                   f"({many['iokernel']['median'] / apg:.2f}× asyncpg).")]
    return out


def plot(scs: list[Scenario], peers: list[str], summ: dict[str, dict[str, dict[str, Any]]],
         ceiling_tps: float | None, path: Path, title: str) -> None:
    """Left: SELECT $1::int + 1 against concurrency; middle: PK lookups (with the
    pgbench ceiling); right: executemany rows/s."""
    colors = {"iokernel": "tab:blue", "asyncpg": "tab:orange", "psycopg": "tab:green",
              "psqlpy": "tab:purple"}
    markers = {"iokernel": "o", "asyncpg": "s", "psycopg": "^", "psqlpy": "D"}
    fig, (ax, ax2, ax3) = harness.figure([3, 1.4, 1.4], (15, 5.5))
    sweep = [sc for sc in scs if sc.kind == "select"]
    for p in peers:
        pts = [(sc.conc, summ[sc.id][p]["median"]) for sc in sweep
               if summ[sc.id][p].get("median")]
        if pts:
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker=markers.get(p, "."),
                    color=colors.get(p),
                    label=p + (" (its default: 2 connections)" if p == "iokernel"
                               else f" (pool of {POOL})"))
    if ceiling_tps:
        ax.axhline(ceiling_tps, color="gray", linestyle=":",
                   label=f"pgbench -S -M prepared -c {POOL} -j 2 (C, PK lookups)")
    if sweep:
        ax.set_xscale("log")
        ax.set_xticks([sc.conc for sc in sweep])
        ax.set_xticklabels([str(sc.conc) for sc in sweep])
    ax.set_yscale("log")
    ax.set_xlabel("concurrent asyncio tasks, one shared client or pool")
    ax.set_ylabel("queries/s (median)")
    ax.set_title(f"SELECT $1::int + 1 — {title}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)

    def bars(axis: Any, kind: str, what: str) -> None:
        sc = next((x for x in scs if x.kind == kind), None)
        if sc is None:
            axis.set_visible(False)
            return
        names = [*peers, *([FLOOR] if FLOOR in summ[sc.id] else [])]
        vals = [summ[sc.id][p].get("median") or 0 for p in names]
        axis.bar(range(len(names)), vals, color=[colors.get(p, "tab:gray") for p in names])
        axis.set_xticks(range(len(names)))
        axis.set_xticklabels(names, fontsize=8, rotation=20)
        for i, v in enumerate(vals):
            axis.annotate(fmt_ops(v), (i, v), ha="center", va="bottom", fontsize=7)
        if kind == "pk" and ceiling_tps:
            axis.axhline(ceiling_tps, color="gray", linestyle=":", label="pgbench ceiling")
            axis.legend(fontsize=7, loc="upper right")
        axis.set_title(f"{sc.label}\n({what}, median)", fontsize=9)
        axis.grid(True, axis="y", alpha=0.3)

    bars(ax2, "pk", "lookups/s")
    bars(ax3, "many", "rows/s")
    harness.save_figure(fig, path)


def environment(dsn: str, how: str, admin: Admin) -> dict[str, Any]:
    settings = ("fsync", "synchronous_commit", "shared_buffers", "max_connections")
    return harness.environment(
        how, ("iokernel", "asyncpg", "psycopg", "psycopg-binary", "psycopg-pool", "psqlpy",
              "uvloop"),
        postgres=admin.version(),
        server_settings={k: admin.sql(f"SHOW {k}")[0][0] for k in settings})


def render(data: dict[str, Any]) -> str:
    """The markdown report from the JSON results."""
    env = data["environment"]
    scs, summ, peers = from_json(data)
    trows = [((sc.label,), summ[sc.id], " rows" if sc.kind == "many" else "") for sc in scs]
    ceiling = data["ceiling"]
    ceiling_tps = data["ceiling_tps_median"]
    missing = env.get("peers_missing") or {}
    gtable, _ = goals(summ, ceiling_tps)
    errors = [f"{sid} / {p}: {e}" for sid, recs in summ.items() for p, s in recs.items()
              for e in s["errors"]]
    report = [
        harness.run_line(data, f"PostgreSQL {env['postgres']} (fsync off)",
                         f" ({env['loop']} loop)"),
        "",
        *harness.throughput_table(("scenario",), trows, peers),
        "",
        ("Connections: max seen in pg_stat_activity (by application_name, sampled every 50 ms "
         "while timed); iokernel's own `stats()` in parentheses. Peers use pools of "
         f"{data['pool_size']}. Spread: (max − min) / median over repetitions, worst client "
         "of the row."),
        "",
        *ceiling_table(peers, summ, ceiling),
        "",
        ("CPU time per operation (per row for executemany), µs, median: the benchmark process "
         "(all threads), and the PostgreSQL server (all its processes):"),
        "",
        *harness.cpu_table(("scenario",), trows, peers, "server"),
        "",
        *floor_table(peers, summ),
        "",
        "Goals:", "", *gtable, "",
    ]
    if missing:
        report += [f"Peers not run: {', '.join(f'{p} ({w})' for p, w in missing.items())}", ""]
    if errors:
        report += ["Failed measurements:", "", *[f"* {e}" for e in errors], ""]
    return "\n".join(report)


def draw(data: dict[str, Any], png: Path) -> bool:
    env = data["environment"]
    scs, summ, peers = from_json(data)
    plot(scs, peers, summ, data["ceiling_tps_median"], png,
         f"PostgreSQL {env['postgres'].split(' ')[0]} on loopback, {env['cpus']} CPUs, "
         f"median of {data['reps']}")
    return True


BENCH = harness.Bench(
    doc=__doc__, script="pg_bench.py", results="pg-latest", quick_results="pg-quick",
    plot=ROOT / "docs" / "img" / "bench-pg.png", quick_plot=HERE / "results" / "pg-quick.png",
    quick_help="~1 min: fewer ops, 3 reps, pgbench -T 5", quick_scale=0.3,
    add_arguments=add_arguments, run=run, render=render, draw=draw,
)


def main(argv: list[str] | None = None) -> int:
    return harness.main(BENCH, argv)


if __name__ == "__main__":
    sys.exit(main())
