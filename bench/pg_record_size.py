"""Bytes per row of a fetched PostgreSQL result: iokernel's ``Record`` against
asyncpg's, measured with tracemalloc (Python's allocator, which both use for
their rows) over the list a ``fetch`` returns and kept alive.

Two queries of 100,000 rows: ``consts``, six small-integer columns (CPython
caches these ints, so what is left is the row objects themselves plus the
list's pointer: the container's own cost), and ``mixed``, bench/pg_bulk.py's
six columns (int, text, timestamptz, numeric, uuid, jsonb).

Usage:
    python bench/pg_record_size.py [--rows N]

Starts its own PostgreSQL (tests/servers) unless $IOKERNEL_BENCH_PG_DSN
names one. Each measurement runs in a fresh process. Benchmarks, not tests.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

QUERIES = {
    "consts": "SELECT 1 AS a, 2 AS b, 3 AS c, 4 AS d, 5 AS e, 6 AS f FROM generate_series(1, {n})",
    "mixed": """SELECT g AS id, 'name ' || g AS name,
         timestamptz '2024-01-01 00:00:00+00' + g * interval '1 second' AS at,
         (g / 100.0)::numeric(12, 2) AS amount, md5(g::text)::uuid AS uid,
         jsonb_build_object('k', g, 'tag', 'x') AS doc
       FROM generate_series(1, {n}) g""",
}
PEERS = ("iokernel", "asyncpg")


async def child(peer: str, query: str, rows: int, dsn: str) -> dict[str, Any]:
    if peer == "iokernel":
        from iokernel import pg

        db: Any = pg.AsyncClient(dsn)
    else:
        import asyncpg

        db = await asyncpg.connect(dsn)
    sql = QUERIES[query].format(n=rows)
    await db.fetch(sql)  # warm: statement cache, codecs, interned names
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = await db.fetch(sql)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(result) == rows
    row = result[0]
    out = {"peer": peer, "query": query, "rows": rows,
           "bytes_per_row": (after - before) / rows,
           "getsizeof_row": sys.getsizeof(row)}
    del result, row
    await db.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--child", nargs=4, metavar=("PEER", "QUERY", "ROWS", "DSN"))
    args = ap.parse_args()
    if args.child:
        peer, query, rows, dsn = args.child
        print(json.dumps(asyncio.run(child(peer, query, int(rows), dsn))))
        return
    import harness

    with harness.server("postgres", "IOKERNEL_BENCH_PG_DSN") as srv:
        print(f"# {' '.join(sys.argv)}\n# {srv.how}; {args.rows:,} rows per fetch")
        print("| query | peer | bytes/row (tracemalloc) | sys.getsizeof(row) |")
        print("|---|---|---|---|")
        for query in QUERIES:
            for peer in PEERS:
                cmd = [sys.executable, __file__, "--child", peer, query, str(args.rows), srv.url]
                run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
                if run.returncode != 0:
                    raise RuntimeError(f"{peer} {query} failed:\n{run.stderr[-3000:]}")
                r = json.loads(run.stdout.strip().splitlines()[-1])
                print(f"| {query} | {peer} | {r['bytes_per_row']:.1f} | {r['getsizeof_row']} |",
                      flush=True)


if __name__ == "__main__":
    main()
