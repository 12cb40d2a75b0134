"""The harness of the side-by-side benchmarks: run.py (Redis) and pg_bench.py
(PostgreSQL) hold only their cases (what one measurement of one client does)
and their goals; everything around them is here, written once:

* the server: a private one from tests/servers unless an environment
  variable names one (``server``);
* the run: every repetition runs every case, and the clients of a case in
  turn, the order rotated each repetition (A B C, B C A, C A B, ...), so
  machine noise hits every client alike (``interleave``);
* CPU accounting: ``Clock`` times one measurement (wall time, this process's
  CPU time, the server's CPU time from whatever source the case gives it);
  ``process_tree_cpu`` reads a server's processes from /proc/PID/schedstat;
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
import gc
import importlib.metadata as md
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

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


# ------------------------------------------------------------------ measuring
@dataclass
class Measurement:
    ops: int
    seconds: float
    conns_server: int | None = None  # connections of this client, seen by the server
    conns_stats: int | None = None  # iokernel's own stats(): connections + dedicated
    cpu_s: float | None = None  # CPU time of this whole process (all threads) while timed
    server_cpu_s: float | None = None  # CPU time of the server while timed

    @property
    def ops_per_s(self) -> float:
        return self.ops / self.seconds


class Clock:
    """Wall time, this process's CPU time and the server's CPU time of one timed run.

    CPU per op is much less disturbed by other load on the machine than
    throughput is, so it is recorded next to it. `server_cpu` (seconds, or
    None when unknown) is read before and after, outside the timed section.
    """

    def __init__(self, server_cpu: Callable[[], float | None] | None = None) -> None:
        self.server_cpu = server_cpu

    def start(self) -> None:
        self.srv0 = self.server_cpu() if self.server_cpu else None
        self.cpu0 = time.process_time()
        self.t0 = time.perf_counter()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self.t0
        self.cpu = time.process_time() - self.cpu0
        srv1 = self.server_cpu() if self.server_cpu else None
        self.server = None if self.srv0 is None or srv1 is None else srv1 - self.srv0

    def measurement(self, ops: int) -> Measurement:
        return Measurement(ops, self.seconds, cpu_s=self.cpu, server_cpu_s=self.server)


def timed_threads(body: Callable[[int], None], counts: Sequence[int], warm: int,
                  clock: Clock) -> None:
    """Time `body(n)` run by one thread per item of `counts` (`body(warm)`
    first, untimed), all released at once; one count: the calling thread
    itself. The first exception of any thread is raised."""
    if len(counts) == 1:
        body(warm)
        gc.collect()
        clock.start()
        body(counts[0])
        clock.stop()
        return
    barrier = threading.Barrier(len(counts) + 1)
    errors: list[Exception] = []

    def thread_main(n: int) -> None:
        try:
            body(warm)
            barrier.wait()
            body(n)
        except Exception as e:
            errors.append(e)
            barrier.abort()

    threads = [threading.Thread(target=thread_main, args=(n,), daemon=True) for n in counts]
    for t in threads:
        t.start()
    while barrier.n_waiting < len(counts) and not errors:  # all warmed up and parked
        time.sleep(0.001)
    gc.collect()
    clock.start()
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait()
    for t in threads:
        t.join()
    clock.stop()
    if errors:
        raise errors[0]


def process_tree_cpu(pid: int | None) -> float | None:
    """CPU seconds of a server started here: the process and its children (for
    PostgreSQL: postmaster, backends, checkpointer, ...) from /proc/PID/schedstat,
    in nanoseconds, plus the children it already reaped (cutime + cstime, clock
    ticks). None without a pid (a server given by URL)."""
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            raw = Path(f"/proc/{d}/stat").read_text()
            fields = raw[raw.rindex(")") + 2:].split()
            if int(d) != pid and int(fields[1]) != pid:  # ppid
                continue
            total += int(Path(f"/proc/{d}/schedstat").read_text().split()[0]) / 1e9
        except (OSError, ValueError, IndexError):
            continue
        if int(d) == pid:
            total += (int(fields[13]) + int(fields[14])) / tick  # cutime, cstime
    return total


# ------------------------------------------------------------------ the run
class Case(Protocol):
    @property
    def id(self) -> str: ...


C = TypeVar("C", bound=Case)
T = TypeVar("T")


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


class ClientProcesses:
    """One worker process per client: `call(client, fn, *args)` runs
    `fn(*args)` (a module-level function, so it pickles by name) in that
    client's own process and returns its result, raising what it raised.

    Measuring every client in one process let one client's leftovers load
    the others: valkey-glide keeps a timer thread that runs ~5 % of a CPU
    after its client is closed, which made every later iokernel
    measurement in the process ~10 % slower (and its CPU per op higher).
    Workers are started with "spawn" (no inherited threads) and live for
    the whole run, so start-up is paid once per client; with `fresh` each
    measurement gets a new process (and nothing of a client outlives its
    own measurement: glide's thread would otherwise still wake the CPUs
    while the next client is measured). IOKERNEL_BENCH_IN_PROCESS=1 runs
    everything in this process instead (tests that patch a client)."""

    def __init__(self, fresh: bool = False) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: dict[str, tuple[Any, Any]] = {}
        self._fresh = fresh

    def call(self, client: str, fn: Callable[..., T], *args: Any) -> T:
        if os.environ.get("IOKERNEL_BENCH_IN_PROCESS") == "1":
            # For tests that patch a client in their own process.
            return fn(*args)
        if client not in self._workers:
            parent, child = self._ctx.Pipe()
            proc = self._ctx.Process(target=_client_worker, args=(child,),
                                     name=f"bench-{client}", daemon=True)
            proc.start()
            child.close()
            self._workers[client] = (proc, parent)
        proc, conn = self._workers[client]
        conn.send((fn, args))
        try:
            ok, value = conn.recv()
        except EOFError:
            del self._workers[client]
            proc.join(5)
            raise RuntimeError(f"the {client} worker process died "
                               f"(exit code {proc.exitcode})") from None
        if self._fresh:
            self._stop(client)
        if not ok:
            raise value
        return value  # type: ignore[no-any-return]

    def _stop(self, client: str) -> None:
        proc, conn = self._workers.pop(client)
        with contextlib.suppress(OSError):
            conn.send(None)
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join(5)

    def close(self) -> None:
        for client in list(self._workers):
            self._stop(client)

    def __enter__(self) -> ClientProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _client_worker(conn: Any) -> None:
    while (msg := conn.recv()) is not None:
        fn, args = msg
        try:
            conn.send((True, fn(*args)))
        except Exception as e:  # handed to the parent
            try:
                conn.send((False, e))
            except Exception:  # not picklable: its text
                conn.send((False, RuntimeError(f"{type(e).__name__}: {e}")))


@contextlib.contextmanager
def keep_awake(n: int) -> Iterator[None]:
    """N busy loops at nice 19 for the duration (tests/servers/process.py's
    cpus_kept_awake): they keep a VM's vCPUs from halting."""
    if n <= 0:
        yield
        return
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.servers.process import cpus_kept_awake

    with cpus_kept_awake(n):
        yield


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
