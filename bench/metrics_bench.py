"""Application metrics: iokernel.metrics vs prometheus_client, same run, interleaved.

    .venv/bin/python bench/metrics_bench.py            # ~20 s
    .venv/bin/python bench/metrics_bench.py --reps 9 --ops 500000 --json out.json

Each case is one metric operation in a plain Python ``for`` loop, timed with
``perf_counter`` over ``--ops`` operations; every repetition runs every case
for every implementation, rotating which goes first, and the table shows the
median ns per operation. The ``empty loop`` row is the loop alone (the floor
both sides pay); ``net`` ratios subtract it.

Peers:

* ``prometheus_client`` (default, in-process mode): values are Python floats
  guarded by a ``threading.Lock``.
* ``prometheus_client multiprocess`` (``PROMETHEUS_MULTIPROC_DIR``): values
  in mmap'd files, which is what a Python service uses to share metrics
  across worker processes — the closest equivalent of iokernel's file. It must
  be chosen before import, so it runs in a child process (``--peer-mp``
  internally), measured in the same repetitions, in turn with the others.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = [
    ("empty loop", "the loop alone (floor)"),
    ("counter.inc()", "counter without labels"),
    ("child.inc()", "labelled counter, child looked up once"),
    ("labels(a, b).inc()", "labelled counter, lookup by position each time"),
    ("labels(k=a, k2=b).inc()", "lookup by name each time"),
    ("gauge.set(1.5)", "gauge, float value"),
    ("gauge.set(i)", "gauge, int value (converted to float)"),
    ("histogram.observe(v)", "histogram, default buckets (16/11 bounds)"),
]


def build(impl: str, tag: str) -> dict[str, Callable[[int], float]]:
    """Timed loops for one implementation: case -> f(ops) -> seconds."""
    if impl == "iokernel":
        from iokernel import metrics as m

        c = m.counter(f"bench_c_{tag}_total", "x")
        lc = m.counter(f"bench_lc_{tag}_total", "x", labels=("method", "code"))
        g = m.gauge(f"bench_g_{tag}", "x")
        h = m.histogram(f"bench_h_{tag}", "x")
    else:
        import prometheus_client as p

        reg = p.CollectorRegistry()
        c = p.Counter(f"bench_c_{tag}", "x", registry=reg)
        lc = p.Counter(f"bench_lc_{tag}", "x", ("method", "code"), registry=reg)
        g = p.Gauge(f"bench_g_{tag}", "x", registry=reg, multiprocess_mode="livesum")
        h = p.Histogram(f"bench_h_{tag}", "x", registry=reg)
    child = lc.labels("GET", "200")
    pc = time.perf_counter

    def empty(n: int) -> float:
        t = pc()
        for _ in range(n):
            pass
        return pc() - t

    def inc(n: int) -> float:
        f = c.inc
        t = pc()
        for _ in range(n):
            f()
        return pc() - t

    def child_inc(n: int) -> float:
        f = child.inc
        t = pc()
        for _ in range(n):
            f()
        return pc() - t

    def by_pos(n: int) -> float:
        t = pc()
        for _ in range(n):
            lc.labels("GET", "200").inc()
        return pc() - t

    def by_name(n: int) -> float:
        t = pc()
        for _ in range(n):
            lc.labels(method="GET", code="200").inc()
        return pc() - t

    def gset(n: int) -> float:
        f = g.set
        t = pc()
        for _ in range(n):
            f(1.5)
        return pc() - t

    def gset_int(n: int) -> float:
        f = g.set
        t = pc()
        for i in range(n):
            f(i)
        return pc() - t

    def observe(n: int) -> float:
        f = h.observe
        t = pc()
        for _ in range(n):
            f(0.0123)
        return pc() - t

    return dict(zip([k for k, _ in CASES], [empty, inc, child_inc, by_pos, by_name, gset, gset_int, observe]))


def peer_mp_main(ops: int, case: str) -> None:
    """Child process: prometheus_client in multiprocess mode, one case, seconds on stdout."""
    loops = build("prometheus_client", "mp")
    loops[case](min(ops, 10_000))  # warm up
    print(loops[case](ops))


def run_mp(ops: int, case: str, mpdir: str) -> float:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": mpdir}
    out = subprocess.run(
        [sys.executable, __file__, "--peer-mp", case, "--ops", str(ops)],
        capture_output=True, text=True, env=env, check=True, timeout=300,
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ops", type=int, default=300_000, help="operations per measurement")
    ap.add_argument("--reps", type=int, default=5, help="repetitions (median is reported)")
    ap.add_argument("--no-mp", action="store_true", help="skip prometheus_client multiprocess mode")
    ap.add_argument("--json", help="write every measurement here")
    ap.add_argument("--peer-mp", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer_mp:
        peer_mp_main(args.ops, args.peer_mp)
        return

    from importlib.metadata import version

    import iokernel

    prom_version = version("prometheus_client")

    impls: dict[str, Callable[[str, int], float]] = {}
    iok = build("iokernel", "a")
    prom = build("prometheus_client", "a")
    impls["iokernel"] = lambda case, n: iok[case](n)
    impls["prometheus_client"] = lambda case, n: prom[case](n)
    mpdir = tempfile.mkdtemp(prefix="iok-prom-mp")
    if not args.no_mp:
        impls["prometheus_client mp"] = lambda case, n: run_mp(n, case, mpdir)
    names = list(impls)
    for f in (iok, prom):  # warm up
        for loop in f.values():
            loop(10_000)

    samples: dict[str, dict[str, list[float]]] = {n: {c: [] for c, _ in CASES} for n in names}
    t0 = time.time()
    for rep in range(args.reps):
        for ci, (case, _) in enumerate(CASES):
            k = (rep + ci) % len(names)
            for name in names[k:] + names[:k]:
                secs = impls[name](case, args.ops)
                samples[name][case].append(secs / args.ops * 1e9)
        print(f"rep {rep + 1}/{args.reps} done ({time.time() - t0:.0f} s)", file=sys.stderr)

    med = {n: {c: statistics.median(v) for c, v in cs.items()} for n, cs in samples.items()}
    floor = {n: med[n]["empty loop"] for n in names}
    print(f"\nns per operation, median of {args.reps} x {args.ops:,} ops "
          f"(Python {platform.python_version()}, iokernel {iokernel.__version__}, "
          f"prometheus_client {prom_version}, "
          f"{os.cpu_count()} CPUs)\n")
    head = "| operation | " + " | ".join(names) + " | ratio | net ratio |"
    if "prometheus_client mp" in names:
        head += " ratio mp | net ratio mp |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for case, _ in CASES:
        row = f"| `{case}` | " + " | ".join(f"{med[n][case]:.0f}" for n in names)
        if case == "empty loop":
            row += " | | |" + (" | |" if "prometheus_client mp" in names else "")
            print(row)
            continue

        def ratios(peer: str, case: str = case) -> str:
            raw = med[peer][case] / med["iokernel"][case]
            net_i = max(med["iokernel"][case] - floor["iokernel"], 1e-9)
            net = (med[peer][case] - floor[peer]) / net_i
            return f" | {raw:.1f}x | {net:.1f}x"

        row += ratios("prometheus_client")
        if "prometheus_client mp" in names:
            row += ratios("prometheus_client mp")
        print(row + " |")
    if args.json:
        data: dict[str, Any] = {
            "ops": args.ops, "reps": args.reps, "samples_ns": samples, "median_ns": med,
            "python": platform.python_version(), "iokernel": iokernel.__version__,
            "prometheus_client": prom_version,
            "loadavg": os.getloadavg(),
        }
        Path(args.json).write_text(json.dumps(data, indent=1))


if __name__ == "__main__":
    main()
