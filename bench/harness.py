"""The harness of the side-by-side benchmarks: run.py (Redis) and pg_bench.py
(PostgreSQL) hold only their cases (what one measurement of one client does)
and their goals; everything around them is here, written once:

* the server: a private one from tests/servers unless an environment
  variable names one (``server``);
* the run: every repetition runs every case, and the clients of a case in
  turn, the order rotated each repetition (A B C, B C A, C A B, ...), so
  machine noise hits every client alike (``interleave``);
* how one measurement is taken (``Clock``, ``timed_threads``, a server's CPU,
  a worker process per client) is in measuring.py;
* per-client summaries over repetitions (``Record``), the markdown tables of
  throughput and CPU per operation, the run description (``environment``),
  number formats, the matplotlib plumbing of the plots;
* the command line (``main``): --quick, --reps, --scale, --only, --out,
  --plot, -q, and --from-json, which rewrites the report and the plot from
  saved results without running anything; the JSON results and the markdown
  report next to them.

A benchmark describes itself with a ``Bench`` (its script, file names, quick
settings, extra options, and the functions that run it, render its report
and draw its plot) and calls ``main(bench)``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.metadata as md
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from measuring import Measurement, keep_awake

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


# ------------------------------------------------------------------ servers
@dataclass
class Server:
    url: str
    how: str  # how it was found or started, for the run description
    pid: int | None = None  # when started here: its CPU can be read from /proc


@contextlib.contextmanager
def server(kind: str, env_var: str,
           fallback: Callable[[], contextlib.AbstractContextManager[Server]] | None = None,
           ) -> Iterator[Server]:
    """The server named by $env_var; else a private one of `kind` ("redis",
    "postgres") from tests/servers, stopped afterwards; else (tests/ not
    importable) the one `fallback` yields, if given."""
    url = os.environ.get(env_var)
    if url:
        yield Server(url, f"given by {env_var}")
        return
    try:
        from tests.servers import SERVER_KINDS
    except ImportError:
        if fallback is None:
            raise
        with fallback() as srv:
            yield srv
        return
    with SERVER_KINDS[kind]() as srv:
        yield Server(srv.url(), f"started by tests/servers {type(srv).__name__}", srv.pid)


# ------------------------------------------------------------------ the run
class Case(Protocol):
    @property
    def id(self) -> str: ...


C = TypeVar("C", bound=Case)


@dataclass
class Record:
    """One client's measurements of one case over the repetitions."""

    ops_per_s: list[float] = field(default_factory=list)
    conns_server: list[int | None] = field(default_factory=list)
    conns_stats: list[int | None] = field(default_factory=list)
    cpu_us_per_op: list[float | None] = field(default_factory=list)
    server_cpu_us_per_op: list[float | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, m: Measurement) -> None:
        self.ops_per_s.append(m.ops_per_s)
        self.conns_server.append(m.conns_server)
        self.conns_stats.append(m.conns_stats)
        self.cpu_us_per_op.append(None if m.cpu_s is None else m.cpu_s * 1e6 / m.ops)
        self.server_cpu_us_per_op.append(
            None if m.server_cpu_s is None else m.server_cpu_s * 1e6 / m.ops)

    def summary(self) -> dict[str, Any]:
        """The raw lists, and (once anything was measured) median, min, max,
        spread ((max - min) / median), max connections, median CPU per op."""
        v = self.ops_per_s
        out: dict[str, Any] = {
            "ops_per_s": v, "conns_server": self.conns_server, "conns_stats": self.conns_stats,
            "cpu_us_per_op": self.cpu_us_per_op,
            "server_cpu_us_per_op": self.server_cpu_us_per_op, "errors": self.errors,
        }
        if v:
            med_v = statistics.median(v)
            out.update(median=med_v, min=min(v), max=max(v), spread=(max(v) - min(v)) / med_v)
            for key in ("conns_server", "conns_stats"):
                xs = [c for c in getattr(self, key) if c is not None]
                out[key + "_max"] = max(xs) if xs else None
            for key in ("cpu_us_per_op", "server_cpu_us_per_op"):
                ys = [c for c in getattr(self, key) if c is not None]
                out[key + "_median"] = statistics.median(ys) if ys else None
        return out


def interleave(cases: Sequence[C], clients: Callable[[C], Sequence[str]], reps: int,
               measure: Callable[[C, str], Measurement], *,
               before_rep: Callable[[int], str | None] | None = None,
               keep_going: bool = False, verbose: bool = True,
               env: dict[str, Any] | None = None) -> dict[str, dict[str, Record]]:
    """Round-robin: every repetition runs every case, the clients of a case in
    turn, starting one further each repetition. `before_rep(rep)` runs first in
    each repetition (and may return a line to log). With `keep_going` a failing
    measurement is recorded in the client's errors instead of ending the run.
    `env` gets elapsed_s and loadavg_end."""
    results = {c.id: {name: Record() for name in clients(c)} for c in cases}
    total = reps * sum(len(clients(c)) for c in cases)
    wid = max((len(c.id) for c in cases), default=0)
    wcl = max((len(n) for c in cases for n in clients(c)), default=0)
    done = 0
    t_start = time.monotonic()

    def log(msg: str) -> None:
        if verbose:
            print(f"[{time.monotonic() - t_start:5.0f}s] {msg}", file=sys.stderr, flush=True)

    for rep in range(reps):
        if before_rep is not None:
            msg = before_rep(rep)
            if msg:
                log(f"rep {rep + 1} {msg}")
        for case in cases:
            names = list(clients(case))
            k = rep % len(names)
            for name in names[k:] + names[:k]:
                rec = results[case.id][name]
                done += 1
                where = f"[{done}/{total}] rep {rep + 1} {case.id:{wid}s} {name:{wcl}s}"
                try:
                    m = measure(case, name)
                except Exception as e:
                    if not keep_going:
                        raise
                    rec.errors.append(f"{type(e).__name__}: {e}")
                    log(f"{where} FAILED: {e}")
                    continue
                rec.add(m)
                log(f"{where} {m.ops_per_s:>11,.0f} ops/s  conns={m.conns_server}"
                    + ("" if m.conns_stats is None else f" (stats {m.conns_stats})"))
    if env is not None:
        env["elapsed_s"] = round(time.monotonic() - t_start, 1)
        env["loadavg_end"] = os.getloadavg()
    return results


def summaries(results: dict[str, dict[str, Record]]) -> dict[str, dict[str, dict[str, Any]]]:
    return {cid: {name: rec.summary() for name, rec in recs.items()}
            for cid, recs in results.items()}


class UsageError(Exception):
    """A command-line mistake found while preparing the run (reported by main)."""


def select(cases: list[C], only: str | None, what: str = "case") -> list[C]:
    """The cases whose id contains `only` (all without it)."""
    if not only:
        return cases
    picked = [c for c in cases if only in c.id]
    if not picked:
        raise UsageError(f"--only {only!r} matches no {what}")
    return picked


# ------------------------------------------------------------------ reporting
def fmt_ops(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    return f"{x / 1e3:,.1f} k" if x >= 1e4 else f"{x:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}×"


def run_line(data: dict[str, Any], server: str, how: str = "") -> str:
    """The report's first paragraph: command, repetitions, machine, `server`
    (its name and version), duration, load. `how` follows "median ops/s"."""
    env = data["environment"]
    return (f"Command: `{data['command']}` — {data['reps']} repetitions, interleaved; median "
            f"ops/s{how}. {env['cpus']} CPUs ({env['cpu_model']}), Python {env['python']}, "
            f"{server}, run took {env['elapsed_s']} s, load average "
            f"{env['loadavg_start'][0]:.2f} → {env['loadavg_end'][0]:.2f}.")


# A table row: its label cells, the summaries of its clients (client name ->
# Record.summary()), and the unit after each throughput (e.g. " rows").
TableRow = tuple[Sequence[str], dict[str, dict[str, Any]], str]


def throughput_table(heads: Sequence[str], rows: Iterable[TableRow],
                     peers: Sequence[str]) -> list[str]:
    """Median ops/s of every peer, iokernel's ratio to each other peer,
    connections (server-side max; iokernel's stats() in parentheses) and the
    worst spread of the row."""
    others = [p for p in peers if p != "iokernel"] if "iokernel" in peers else []
    out = ["| " + " | ".join([*heads, *(f"{p} ops/s" for p in peers),
                              *(f"iokernel / {p}" for p in others),
                              "connections " + " / ".join(peers), "spread"]) + " |",
           "|" + "---|" * len(heads) + "--:|" * (len(peers) + len(others)) + ":-:|--:|"]

    def conns(s: dict[str, Any] | None) -> str:
        if s is None or "conns_server_max" not in s:
            return "-"
        n, st = s["conns_server_max"], s.get("conns_stats_max")
        return ("?" if n is None else str(n)) + ("" if st is None else f" ({st})")

    for cells, clients, unit in rows:
        meds = {p: clients.get(p, {}).get("median") for p in peers}
        spreads = [clients[p]["spread"] for p in peers if "spread" in clients.get(p, {})]
        out.append("| " + " | ".join([
            *cells,
            *(fmt_ops(meds[p]) + (unit if meds[p] else "") for p in peers),
            *(ratio(meds["iokernel"], meds[p]) for p in others),
            " / ".join(conns(clients.get(p)) for p in peers),
            f"{max(spreads) * 100:.0f}%" if spreads else "-",
        ]) + " |")
    return out


def cpu_table(heads: Sequence[str], rows: Iterable[TableRow], peers: Sequence[str],
              server: str) -> list[str]:
    """Median CPU µs per op of this process with every peer, and of the server
    with every peer that ran the row."""
    out = ["| " + " | ".join([*heads, *peers, f"{server}, with " + " / ".join(peers)]) + " |",
           "|" + "---|" * len(heads) + "--:|" * len(peers) + ":-:|"]

    def cell(clients: dict[str, dict[str, Any]], p: str, key: str) -> str:
        v = clients.get(p, {}).get(key + "_median")
        return "-" if v is None else f"{v:.1f}"

    for cells, clients, _unit in rows:
        out.append("| " + " | ".join([
            *cells,
            *(cell(clients, p, "cpu_us_per_op") for p in peers),
            " / ".join(cell(clients, p, "server_cpu_us_per_op") for p in peers if p in clients),
        ]) + " |")
    return out


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=False).stdout.rstrip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return ""


def environment(server: str, dists: Iterable[str], **extra: Any) -> dict[str, Any]:
    """Date, CPUs, load, Python, platform, `server` (how it was started), the
    versions of `dists`, the git commit (and edited src/ or python/ files),
    when the native module was built; `extra` adds the benchmark's own."""
    so = None
    with contextlib.suppress(ImportError):
        import iokernel

        so = next(Path(iokernel.__file__).parent.glob("_native*.so"), None)
    return {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "loadavg_start": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        **extra,
        "server": server,
        "versions": {d: _version(d) for d in dists},
        "git": _git("rev-parse", "--short", "HEAD"),
        "git_dirty_files": [ln[3:] for ln in _git("status", "--porcelain").splitlines()
                            if ln[3:].startswith(("src/", "python/"))],
        "native_module_mtime": (dt.datetime.fromtimestamp(so.stat().st_mtime, dt.timezone.utc)
                                .isoformat(timespec="seconds") if so else None),
    }


# ------------------------------------------------------------------ plots
def figure(width_ratios: Sequence[float], figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A headless matplotlib figure with one row of panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, len(width_ratios), figsize=figsize, dpi=100,
                        gridspec_kw={"width_ratios": list(width_ratios)})


def save_figure(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def rel(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def write_table(name: str, command: str, reps: int, lines: Sequence[str]) -> str:
    """A table-only report (a script without ``main``): the table under the
    command that made it, printed and written to bench/results/<name>.md."""
    text = (f"`{command}`: median of {reps}; {os.cpu_count()} CPUs\n\n"
            + "\n".join(lines) + "\n")
    print(text, end="")
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / f"{name}.md").write_text(text)
    return text

# ------------------------------------------------------------------ command line
@dataclass(frozen=True)
class Run:
    """What the command line decided for a run."""

    args: argparse.Namespace  # the benchmark's own options are here too
    reps: int
    scale: float
    command: str  # as recorded in the results, e.g. "python bench/run.py --quick"
    verbose: bool


@dataclass(frozen=True)
class Bench:
    """A benchmark, as main() needs it."""

    doc: str  # the script's docstring: its first paragraph is the --help description
    script: str  # "run.py": bench/<script>
    results: str  # bench/results/<results>.json and .md
    quick_results: str  # the same with --quick
    plot: Path  # the plot's default path
    quick_plot: Path  # the same with --quick
    quick_help: str  # what --quick does, e.g. "~30 s: fewer ops and repetitions"
    quick_scale: float
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[Run], dict[str, Any]]  # measures; returns the JSON results
    render: Callable[[dict[str, Any]], str]  # the markdown report from the results
    draw: Callable[[dict[str, Any], Path], bool]  # the plot; False when it has nothing to show


def publish(bench: Bench, data: dict[str, Any], md_path: Path, png: Path) -> str:
    """Print the report and write it to md_path; draw the plot."""
    text = bench.render(data)
    print(text)
    md_path.write_text(text + "\n")
    if bench.draw(data, png):
        print(f"plot: {rel(png)}", file=sys.stderr)
    return text


def main(bench: Bench, argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=bench.doc.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help=bench.quick_help)
    ap.add_argument("--reps", type=int, default=None, help="repetitions (default 5, quick 3)")
    ap.add_argument("--scale", type=float, default=None,
                    help=f"multiply every case's op count (default 1, quick {bench.quick_scale:g})")
    ap.add_argument("--only", default=None, help="substring filter on case ids")
    bench.add_arguments(ap)
    ap.add_argument("--out", default=None,
                    help=f"JSON results (default bench/results/{bench.results}.json)")
    ap.add_argument("--plot", default=None,
                    help=f"PNG (default {rel(bench.plot)}; quick: {rel(bench.quick_plot)})")
    ap.add_argument("--from-json", default=None, metavar="JSON",
                    help="no run: rewrite the report (.md next to it) and the plot from results")
    ap.add_argument("-q", "--quiet", action="store_true", help="no per-measurement lines")
    ap.add_argument("--keep-awake", type=int, default=0, metavar="N",
                    help="run N lowest-priority busy loops during the run, so that idle "
                         "CPUs of a virtual machine do not halt (see docs/benchmarks.md, "
                         "'vCPU wake-ups'); recorded in the results")
    args = ap.parse_args(argv)
    if args.from_json:
        src = Path(args.from_json)
        publish(bench, json.loads(src.read_text()), src.with_suffix(".md"),
                Path(args.plot) if args.plot else bench.plot)
        return 0

    name = bench.quick_results if args.quick else bench.results
    out = Path(args.out) if args.out else HERE / "results" / f"{name}.json"
    png = Path(args.plot) if args.plot else (bench.quick_plot if args.quick else bench.plot)
    command = f"python bench/{bench.script} " + " ".join(sys.argv[1:] if argv is None else argv)
    run = Run(args, args.reps or (3 if args.quick else 5),
              args.scale or (bench.quick_scale if args.quick else 1.0),
              command.strip(), verbose=not args.quiet)
    try:
        with keep_awake(args.keep_awake):
            data = bench.run(run)
    except UsageError as e:
        ap.error(str(e))
    data["keep_awake"] = args.keep_awake
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    publish(bench, data, out.with_suffix(".md"), png)
    print(f"results: {rel(out)}", file=sys.stderr)
    return 0
