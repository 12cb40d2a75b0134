"""Soak test (bench/soak.py): reporting and the verdict. The process's RSS,
open fds and threads; the snapshot of all tallies and the report at each
quarter; after the calls, waiting for fds and threads to settle, the totals
and the verdict (exit status 1 unless it is PASS).

Report is a part of the Soak class (bench/soak.py); the attributes it uses
that other parts set are declared below.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from soak_model import RSS_GROWTH_LIMIT_MB, SETTLE_LIMIT, SLOW_CALL_LIMIT
from soak_outcomes import PROBLEMS, SAMPLES, UNEXPLAINED, Tally


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_table() -> dict[int, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            out[int(fd)] = os.readlink(f"/proc/self/fd/{fd}")
    return out


def native_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def fmt_counter(c: Counter[str]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in sorted(c.items(), key=lambda kv: -kv[1])) or "none"


class Report:
    total: int
    t0: float
    verbose: bool
    tallies: list[Tally]
    fault_counts: Counter[str]
    fault_log: list[str]
    fault_errors: list[str]
    faults: Callable[[], list[tuple[str, Callable[[], str]]]]

    def done(self) -> int:
        return sum(t.calls for t in self.tallies)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        print(text, flush=True)

    # -- reports
    def snapshot(self) -> dict[str, Any]:
        errors: Counter[str] = Counter()
        intended: Counter[str] = Counter()
        by_kind: Counter[str] = Counter()
        cancelled = wrong = untyped = unexplained = 0
        slowest, slowest_op = 0.0, ""
        for t in self.tallies:
            errors.update(dict(t.errors))
            intended.update(dict(t.intended))
            by_kind[t.kind] += t.calls
            cancelled += t.cancelled
            wrong += t.wrong
            untyped += t.untyped
            unexplained += t.unexplained
            if t.slowest > slowest:
                slowest, slowest_op = t.slowest, t.slowest_op
        return {
            "calls": sum(by_kind.values()), "elapsed": self.elapsed(), "rss": rss_mb(),
            "fds": fd_count(), "native": native_threads(), "py": threading.active_count(),
            "errors": errors, "intended": intended, "by_kind": by_kind,
            "cancelled": cancelled, "wrong": wrong, "untyped": untyped,
            "unexplained": unexplained, "faults": sum(self.fault_counts.values()),
            "slowest": slowest, "slowest_op": slowest_op,
        }

    def report_quarter(self, q: int, s: dict[str, Any], prev: dict[str, Any]) -> None:
        calls = s["calls"] - prev["calls"]
        secs = s["elapsed"] - prev["elapsed"]
        faults = s["faults"] - prev["faults"]
        self.say(
            f"quarter {q}/4  calls {s['calls']:,}  elapsed {s['elapsed']:.1f}s "
            f"({calls / max(secs, 1e-9):,.0f}/s)  RSS {s['rss']:.1f} MB  fds {s['fds']}  "
            f"threads {s['native']} native / {s['py']} Python  faults {faults}"
        )
        self.say(f"  errors:    {fmt_counter(s['errors'] - prev['errors'])}")
        self.say(f"  intended:  {fmt_counter(s['intended'] - prev['intended'])}")
        self.say(
            f"  cancelled by us {s['cancelled'] - prev['cancelled']:,}   "
            f"wrong values {s['wrong'] - prev['wrong']}   untyped {s['untyped'] - prev['untyped']}"
            f"   unexplained server errors {s['unexplained'] - prev['unexplained']}   "
            f"slowest call so far {s['slowest']:.2f}s ({s['slowest_op']})"
        )

    def wait_settled(self, fds0: int, native0: int, py0: int) -> tuple[int, int, int, float]:
        deadline = time.monotonic() + SETTLE_LIMIT
        start = time.monotonic()
        while True:
            fds, native, py = fd_count(), native_threads(), threading.active_count()
            if (fds <= fds0 and native <= native0 and py <= py0) or time.monotonic() > deadline:
                return fds, native, py, time.monotonic() - start
            time.sleep(0.05)

    # -- after the calls
    def finish(self, quarters: list[dict[str, Any]], verdict_notes: list[str], fds0: int,
               native0: int, py0: int, fd_table0: dict[int, str]) -> int:
        """After the calls: the totals, then the verdict; the exit status."""
        # -- after the calls: connections settle, no leaked fds or threads
        fds1, native1, py1, settle_s = self.wait_settled(fds0, native0, py0)
        s = self.snapshot()
        self.say("")
        self.say(f"after the calls (settled {settle_s:.1f}s): RSS {s['rss']:.1f} MB, fds {fds1}, "
                 f"threads {native1} native / {py1} Python")
        self.say(f"calls by client: {fmt_counter(s['by_kind'])}")
        by_op: Counter[str] = Counter()
        for t in self.tallies:
            by_op.update({f"{t.kind.split('.')[0]}.{k}": v for k, v in t.by_op.items()})
        self.say(f"calls by op: {fmt_counter(by_op)}")
        self.say(f"faults: {fmt_counter(self.fault_counts)}")
        self.say(f"errors (all): {fmt_counter(s['errors'])}")
        self.say(f"intended errors (all): {fmt_counter(s['intended'])}; cancelled by us "
                 f"{s['cancelled']:,}")
        if self.verbose:
            for k, v in sorted(SAMPLES.items()):
                self.say(f"  e.g. {k}: {v}")
            self.say("\n".join(self.fault_log))

        # -- verdict
        failures: list[str] = list(verdict_notes)
        failures += [f"fault could not be injected: {e}" for e in self.fault_errors]
        if s["calls"] < self.total:
            failures.append(f"only {s['calls']:,} of {self.total:,} calls done")
        if s["wrong"]:
            failures.append(f"{s['wrong']} wrong values")
        if s["untyped"]:
            failures.append(f"{s['untyped']} untyped errors")
        if s["unexplained"]:
            failures.append(f"{s['unexplained']} unexplained server errors")
        if s["slowest"] > SLOW_CALL_LIMIT:
            failures.append(f"a call took {s['slowest']:.1f}s ({s['slowest_op']}), past every "
                            "timeout")
        growth = quarters[-1]["rss"] - quarters[0]["rss"] if len(quarters) == 4 else float("nan")
        if not growth < RSS_GROWTH_LIMIT_MB:
            failures.append(f"RSS grew {growth:+.1f} MB from the first quarter to the last")
        if fds1 > fds0:
            new = {fd: p for fd, p in fd_table().items() if fd_table0.get(fd) != p}
            failures.append(f"fds {fds1} after the calls, {fds0} at baseline; new: {new}")
        if native1 > native0 or py1 > py0:
            failures.append(f"threads {native1} native / {py1} Python after the calls, "
                            f"{native0} / {py0} at baseline")
        missing = [name for name, _ in self.faults() if not self.fault_counts[name]]
        if missing:
            failures.append(f"faults never injected: {missing}")
        self.say("")
        self.say(f"RSS growth from quarter 1 to quarter 4: {growth:+.1f} MB "
                 f"(limit {RSS_GROWTH_LIMIT_MB:.0f} MB); fds {fds0} at baseline, {fds1} after; "
                 f"wrong values {s['wrong']}; untyped errors {s['untyped']}; unexplained server "
                 f"errors {s['unexplained']}")
        if UNEXPLAINED:
            self.say(f"unexplained server errors: {fmt_counter(UNEXPLAINED)}")
        for kind, seen in PROBLEMS.items():
            self.say(f"first {kind} problems:")
            for p in seen:
                self.say("  " + p.replace("\n", "\n  "))
        if failures:
            self.say("verdict: FAIL — " + "; ".join(failures))
            return 1
        self.say(f"verdict: PASS — {s['calls']:,} calls in {s['elapsed']:.0f}s, every outcome "
                 "the right value or a typed iokernel error")
        return 0
