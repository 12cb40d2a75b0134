"""Where a big PostgreSQL result's memory goes, per column type: bytes per
row of a 200,000-row ``fetch`` of one column, iokernel against asyncpg.

For each column (NULL, int, text, timestamptz, numeric, uuid, jsonb) and
each peer, two fresh processes:

* traced (``tracemalloc``, which sees every Python object, also those the
  native code makes): the bytes still held once ``fetch`` returned (the
  rows: list, Records, values) and the traced peak during it, per row;
* untraced: the growth of the peak RSS (``ru_maxrss``) per row, which also
  counts what no Python object holds (the kernel's raw batches, buffers,
  the allocator's slack), and the seconds.

Retained minus the NULL column's retained is what one value of the type
costs; RSS peak minus retained is the transient part. Benchmarks, not
tests; starts its own PostgreSQL (tests/servers) unless
$IOKERNEL_BENCH_PG_DSN names one.

Usage:
    python bench/pg_mem_types.py [--rows 200000] [--only int,jsonb]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

PEERS = ("iokernel", "asyncpg")
# column name -> SQL expression
COLUMNS = {
    "null": "NULL::int4",
    "int": "g",
    "text": "'name ' || g",
    "timestamptz": "timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second'",
    "numeric": "(g / 100.0)::numeric(12, 2)",
    "uuid": "md5(g::text)::uuid",
    "jsonb": "jsonb_build_object('k', g, 'tag', 'x')",
}


def setup_sql(rows: int) -> str:
    cols = ", ".join(f"{e} AS c_{name}" for name, e in COLUMNS.items())
    return (f"DROP TABLE IF EXISTS bench_types; CREATE TABLE bench_types AS SELECT {cols} "
            f"FROM generate_series(1, {rows}) g; VACUUM ANALYZE bench_types")


def maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def child(peer: str, col: str, dsn: str, traced: bool) -> dict[str, Any]:
    if peer == "iokernel":
        from iokernel import pg

        db: Any = pg.AsyncClient(dsn)
    else:
        import asyncpg

        db = await asyncpg.connect(dsn)
    sql = f"SELECT c_{col} FROM bench_types"
    await db.fetch(sql + " LIMIT 10")  # statement prepared, types known
    gc.collect()
    if traced:
        tracemalloc.start()
    base_t = tracemalloc.get_traced_memory()[0] if traced else 0
    base_rss = maxrss()
    t0 = time.perf_counter()
    rows = await db.fetch(sql)
    secs = time.perf_counter() - t0
    out: dict[str, Any] = {"peer": peer, "col": col, "rows": len(rows), "seconds": secs}
    if traced:
        peak = tracemalloc.get_traced_memory()[1]
        gc.collect()
        out["retained"] = (tracemalloc.get_traced_memory()[0] - base_t) / len(rows)
        out["traced_peak"] = (peak - base_t) / len(rows)
        tracemalloc.stop()
    else:
        out["rss_peak"] = (maxrss() - base_rss) / len(rows)
    del rows
    await db.close()
    return out


def run_child(peer: str, col: str, dsn: str, traced: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", peer, col, dsn] + (["--traced"] if traced else [])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{peer} {col} failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--only", default=",".join(COLUMNS))
    ap.add_argument("--child", nargs=3, metavar=("PEER", "COL", "DSN"))
    ap.add_argument("--traced", action="store_true")
    args = ap.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(child(*args.child, args.traced))))
        return
    import harness

    cols = [c for c in args.only.split(",") if c]
    with harness.server("postgres", "IOKERNEL_BENCH_PG_DSN") as srv:
        import psycopg

        with psycopg.connect(srv.url, autocommit=True) as c:
            for stmt in setup_sql(args.rows).split(";"):
                c.execute(stmt)  # type: ignore[call-overload]
        print(f"# {' '.join(sys.argv)}\n# {srv.how}; {args.rows:,} rows of one column")
        print("\n| column | peer | retained B/row | traced peak B/row | RSS peak B/row "
              "| transient B/row | s |")
        print("|---|---|---|---|---|---|---|")
        for col in cols:
            for peer in PEERS:
                t = run_child(peer, col, srv.url, True)
                r = run_child(peer, col, srv.url, False)
                print(f"| {col} | {peer} | {t['retained']:.0f} | {t['traced_peak']:.0f} | "
                      f"{r['rss_peak']:.0f} | {r['rss_peak'] - t['retained']:.0f} | "
                      f"{r['seconds']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
