"""Big PostgreSQL results and bulk loads: iokernel against asyncpg (pool of
10), each measurement in a fresh process so that its peak RSS is its own.

Cases:

* ``fetch-1m``: ``fetch("SELECT * FROM bench_big")``, 1,000,000 rows of
  (int, text, timestamptz, numeric, uuid, jsonb): seconds, and the process's
  peak RSS growth over its RSS once connected (``ru_maxrss``);
* ``cursor-1m``: the same rows through ``cursor(prefetch=1000)`` (asyncpg:
  ``conn.cursor`` in a transaction), counted, not kept: seconds and peak RSS;
* ``copy-1m``: ``copy_records_to_table`` of 1,000,000 records (int, text,
  float8, timestamptz) into an unlogged table (truncated before each).

Each repetition runs every case for every peer, the order rotated, and the
report gives medians and the ratio asyncpg time / iokernel time (> 1:
iokernel faster) and the peak RSS growth of both.

Usage:
    python bench/pg_bulk.py                 # 3 repetitions
    python bench/pg_bulk.py --reps 5 --only fetch-1m

Starts its own PostgreSQL (tests/servers) unless $IOKERNEL_BENCH_PG_DSN
names one; writes bench/results/pg-bulk-latest.json and the plot
docs/img/bench-pg-bulk.png (``--from-json FILE`` redoes table and plot).
Benchmarks, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

ROWS = 1_000_000
CASES = ("fetch-1m", "cursor-1m", "copy-1m")
PEERS = ("iokernel", "asyncpg")
SETUP = f"""
DROP TABLE IF EXISTS bench_big;
CREATE TABLE bench_big AS
  SELECT g AS id, 'name ' || g AS name,
         timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS at,
         (g / 100.0)::numeric(12, 2) AS amount,
         md5(g::text)::uuid AS uid,
         jsonb_build_object('k', g, 'tag', 'x') AS doc
  FROM generate_series(1, {ROWS}) g;
VACUUM ANALYZE bench_big;
DROP TABLE IF EXISTS bench_copy;
CREATE UNLOGGED TABLE bench_copy (a int, b text, c float8, d timestamptz);
"""


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def records() -> list[tuple[Any, ...]]:
    t0 = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    step = datetime.timedelta(seconds=1)
    return [(i, f"row {i}", i * 0.5, t0 + i * step) for i in range(ROWS)]


async def child(peer: str, case: str, dsn: str) -> dict[str, Any]:
    if peer == "iokernel":
        from iokernel import pg

        db: Any = pg.AsyncClient(dsn)
        await db.fetchval("SELECT 1")
    else:
        import asyncpg

        db = await asyncpg.create_pool(dsn, min_size=10, max_size=10)
        await db.fetchval("SELECT 1")
    recs = records() if case == "copy-1m" else None
    if recs is not None:
        await db.execute("TRUNCATE bench_copy")
    base = rss_mb()
    t0 = time.perf_counter()
    if case == "fetch-1m":
        rows = await db.fetch("SELECT * FROM bench_big")
        n = len(rows)
    elif case == "cursor-1m":
        n = 0
        if peer == "iokernel":
            async for _ in db.cursor("SELECT * FROM bench_big", prefetch=1000):
                n += 1
        else:
            async with db.acquire() as conn, conn.transaction():
                async for _ in conn.cursor("SELECT * FROM bench_big", prefetch=1000):
                    n += 1
    else:
        st = await db.copy_records_to_table("bench_copy", records=recs)
        n = int(st.split()[-1])
    secs = time.perf_counter() - t0
    peak = rss_mb()
    await db.close()
    return {"peer": peer, "case": case, "rows": n, "seconds": secs,
            "rss_base_mb": base, "rss_grew_mb": peak - base}


def run_child(peer: str, case: str, dsn: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", peer, case, dsn],
                         capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{peer} {case} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", default=",".join(CASES))
    ap.add_argument("--child", nargs=3, metavar=("PEER", "CASE", "DSN"))
    ap.add_argument("--from-json", type=Path)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(*args.child))))
        return
    if args.from_json:
        data = json.loads(args.from_json.read_text())
        report(data["runs"], list(data["summary"]), data["command"])
        return
    import harness

    cases = [c for c in args.only.split(",") if c]
    with harness.server("postgres", "IOKERNEL_BENCH_PG_DSN") as srv:
        import psycopg

        with psycopg.connect(srv.url, autocommit=True) as c:
            for stmt in SETUP.split(";"):
                if stmt.strip():
                    c.execute(stmt)  # type: ignore[call-overload]
            version = c.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        print(f"# {' '.join(sys.argv)}\n# {srv.how}; PostgreSQL {version}; {ROWS:,} rows")
        results: list[dict[str, Any]] = []
        for rep in range(args.reps):
            for case in cases:
                order = PEERS[rep % 2:] + PEERS[:rep % 2]
                for peer in order:
                    r = run_child(peer, case, srv.url)
                    results.append(r)
                    print(f"rep {rep} {case:10} {peer:9} {r['seconds']:6.2f} s  "
                          f"+{r['rss_grew_mb']:6.0f} MB peak RSS", flush=True)
    report(results, cases, " ".join(sys.argv))


def report(results: list[dict[str, Any]], cases: list[str], command: str) -> None:
    """Table (medians), JSON and plot of a run."""
    print("\n| case | iokernel s | asyncpg s | speed ratio | iokernel +MB | asyncpg +MB |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for case in cases:
        med = {p: statistics.median(r["seconds"] for r in results
                                    if r["case"] == case and r["peer"] == p) for p in PEERS}
        mem = {p: statistics.median(r["rss_grew_mb"] for r in results
                                    if r["case"] == case and r["peer"] == p) for p in PEERS}
        ratio = med["asyncpg"] / med["iokernel"]
        summary[case] = {"seconds": med, "rss_grew_mb": mem, "ratio": ratio}
        print(f"| {case} | {med['iokernel']:.2f} | {med['asyncpg']:.2f} | {ratio:.2f}x | "
              f"{mem['iokernel']:.0f} | {mem['asyncpg']:.0f} |")
    out = HERE / "results" / "pg-bulk-latest.json"
    out.write_text(json.dumps({"command": command, "summary": summary,
                               "runs": results}, indent=1))
    png = ROOT / "docs" / "img" / "bench-pg-bulk.png"
    plot(summary, png)
    print(f"\n# written {out.relative_to(ROOT)}, {png.relative_to(ROOT)}")


def plot(summary: dict[str, Any], path: Path) -> None:
    import harness

    fig, (ax_t, ax_m) = harness.figure([1, 1], (10, 3.6))
    cases = list(summary)
    x = range(len(cases))
    for k, peer in enumerate(PEERS):
        xs = [i + (k - 0.5) * 0.38 for i in x]
        ax_t.bar(xs, [summary[c]["seconds"][peer] for c in cases], 0.38, label=peer)
        ax_m.bar(xs, [summary[c]["rss_grew_mb"][peer] for c in cases], 0.38, label=peer)
    for ax, title in ((ax_t, "seconds (median, lower is better)"),
                      (ax_m, "peak RSS growth, MB (median)")):
        ax.set_xticks(list(x), cases)
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    harness.save_figure(fig, path)


if __name__ == "__main__":
    main()
