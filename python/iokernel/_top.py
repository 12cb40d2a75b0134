"""``python -m iokernel top PID``: a live view of a process's services.

Reads the process's metrics file (so it keeps working while the process's
Python is stuck, or the whole process is stopped) and, when the admin
endpoint answers within 200 ms, adds health, last error and connections from
``/status``. Rates are counter deltas between frames; latency percentiles
are interpolated inside histogram buckets (as Prometheus'
``histogram_quantile`` does), over the last interval when it saw requests,
else since the process started.

Plain ANSI redraw on a terminal, plain text frames otherwise; no curses.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from ._target import (
    AdminError,
    CLIError,
    admin_addresses,
    find_metrics_file,
    http_get,
    process_state,
)

__all__ = ["Snapshot", "fmt_bytes", "fmt_seconds", "parse_labels", "quantile", "render_frame"]

Key = tuple[str, str]
Buckets = list[tuple[float, int]]

_LABEL = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)="((?:[^"\\]|\\.)*)"')
ERROR_KINDS = ("connection", "timeout", "protocol", "overloaded", "closed")
HISTOGRAMS = (
    ("network", "iokernel_network_seconds", "written → reply complete"),
    ("1st byte", "iokernel_first_byte_seconds", "written → first reply byte"),
    ("pickup", "iokernel_pickup_seconds", "reply complete → Python took it"),
    ("queue", "iokernel_queue_seconds", "submitted → written"),
)


def parse_labels(rendered: str) -> dict[str, str]:
    """'k="v",k2="v\\"2"' -> {"k": "v", "k2": 'v"2'}."""
    out: dict[str, str] = {}
    for m in _LABEL.finditer(rendered):
        v = m.group(2)
        if "\\" in v:
            v = re.sub(r"\\(.)", lambda x: "\n" if x.group(1) == "n" else x.group(1), v)
        out[m.group(1)] = v
    return out


def quantile(buckets: Sequence[tuple[float, int]], q: float) -> tuple[float, bool] | None:
    """The q-quantile of non-cumulative (upper bound, count) buckets, the last
    bound +Inf, interpolated linearly inside the bucket it falls in.
    Returns (value, beyond) where beyond means "above the largest finite
    bound, value is that bound"; None without observations."""
    total = sum(n for _, n in buckets)
    if total <= 0:
        return None
    rank = q * total
    cum = 0
    lower = 0.0
    for upper, n in buckets:
        if n > 0 and cum + n >= rank:
            if math.isinf(upper):
                return lower, True
            frac = (rank - cum) / n
            return lower + (upper - lower) * frac, False
        cum += n
        if not math.isinf(upper):
            lower = upper
    return lower, True


def fmt_seconds(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "-"
    if v < 0.001:
        return f"{v * 1e6:.0f}µs"
    if v < 1.0:
        return f"{v * 1e3:.3g}ms"
    return f"{v:.3g}s"


def fmt_q(r: tuple[float, bool] | None) -> str:
    if r is None:
        return "-"
    return (">" if r[1] else "") + fmt_seconds(r[0])


def fmt_bytes(v: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(v) < 1024 or unit == "GiB":
            return f"{v:.0f}{unit}" if unit == "B" else f"{v:.1f}{unit}"
        v /= 1024
    return f"{v:.1f}GiB"


def fmt_num(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def fmt_rate(v: float) -> str:
    if v == 0:
        return "0/s"
    if v >= 100:
        return f"{v:,.0f}/s"
    return f"{v:.3g}/s"


def fmt_age(s: float) -> str:
    s = max(0.0, s)
    if s < 60:
        return f"{s:.0f}s"
    if s < 3600:
        return f"{int(s // 60)}m{int(s % 60):02d}s"
    if s < 86400:
        return f"{int(s // 3600)}h{int(s % 3600 // 60):02d}m"
    return f"{int(s // 86400)}d{int(s % 86400 // 3600):02d}h"


@dataclass
class Snapshot:
    """One reading of a metrics file."""

    t: float
    pid: int
    started_ms: int
    series: dict[Key, dict[str, Any]]

    @classmethod
    def read(cls, path: str) -> Snapshot:
        from . import _native

        t = time.monotonic()
        pid, started, rows = _native.read_metrics(path)
        return cls(t, pid, started, {(r["name"], r["labels"]): r for r in rows})

    def uptime(self) -> float:
        return max(0.0, time.time() - self.started_ms / 1000.0)


def _sum(rows: Iterable[dict[str, Any]]) -> float:
    return float(sum(float(r["value"]) for r in rows))


def _merge(rows: Iterable[dict[str, Any]]) -> Buckets:
    merged: dict[float, int] = {}
    for r in rows:
        for upper, n in r.get("buckets") or ():
            merged[float(upper)] = merged.get(float(upper), 0) + int(n)
    return sorted(merged.items())


def _minus(now: Buckets, before: Buckets) -> Buckets:
    b = dict(before)
    return [(u, max(0, n - b.get(u, 0))) for u, n in now]


@dataclass
class _View:
    """Rates and windows between two snapshots (prev None: since start)."""

    now: Snapshot
    prev: Snapshot | None
    dt: float = field(init=False)

    def __post_init__(self) -> None:
        if self.prev is None:
            self.dt = max(self.now.uptime(), 1e-9)
        else:
            self.dt = max(self.now.t - self.prev.t, 1e-9)

    def select(self, snap: Snapshot | None, name: str, **want: str) -> list[dict[str, Any]]:
        if snap is None:
            return []
        out = []
        for (n, labels), row in snap.series.items():
            if n != name:
                continue
            if want:
                lab = parse_labels(labels)
                if any(lab.get(k) != v for k, v in want.items()):
                    continue
            out.append(row)
        return out

    def total(self, name: str, **want: str) -> float:
        return _sum(self.select(self.now, name, **want))

    def rate(self, name: str, **want: str) -> float:
        now = _sum(self.select(self.now, name, **want))
        before = _sum(self.select(self.prev, name, **want)) if self.prev is not None else 0.0
        return max(0.0, now - before) / self.dt

    def window(self, name: str, **want: str) -> tuple[Buckets, str]:
        """Buckets over the interval if it had observations, else since start."""
        now = _merge(self.select(self.now, name, **want))
        if self.prev is not None:
            win = _minus(now, _merge(self.select(self.prev, name, **want)))
            if sum(n for _, n in win) > 0:
                return win, "last interval"
        return now, "since start"


def services(snap: Snapshot) -> list[str]:
    names: list[str] = []
    for (name, labels), row in snap.series.items():
        if row.get("kernel") or name.startswith("iokernel_"):
            svc = parse_labels(labels).get("service")
            if svc is not None and svc not in names:
                names.append(svc)
    return sorted(names)


class _Style:
    def __init__(self, color: bool) -> None:
        self.color = color

    def bold(self, s: str) -> str:
        return f"\x1b[1m{s}\x1b[0m" if self.color else s

    def dim(self, s: str) -> str:
        return f"\x1b[2m{s}\x1b[0m" if self.color else s

    def red(self, s: str) -> str:
        return f"\x1b[31m{s}\x1b[0m" if self.color else s

    def green(self, s: str) -> str:
        return f"\x1b[32m{s}\x1b[0m" if self.color else s

    def yellow(self, s: str) -> str:
        return f"\x1b[33m{s}\x1b[0m" if self.color else s


def _health(st: _Style, h: str) -> str:
    if h == "up":
        return st.green(h)
    if h == "down":
        return st.red(h)
    return st.yellow(h)


def _service_block(v: _View, svc: str, status: dict[str, Any] | None, st: _Style) -> list[str]:
    lines: list[str] = []
    head = f"{st.bold(svc)}"
    if status is not None:
        head += f"  health {_health(st, str(status.get('health', '?')))}"
        limits = status.get("limits") or {}
        if limits:
            head += st.dim(
                f"  limits in-flight {limits.get('max_in_flight', '?')}"
                f" queued {limits.get('max_queued', '?')}"
            )
    lines.append(head)
    if status is not None and status.get("last_error"):
        lines.append("  " + st.red(f"last error: {status['last_error']}"))

    s = {"service": svc}
    req = v.rate("iokernel_requests_total", **s)
    errs = {k: v.rate("iokernel_errors_total", kind=k, **s) for k in ERROR_KINDS}
    err_total = sum(errs.values())
    err_txt = fmt_rate(err_total)
    if err_total > 0:
        err_txt = st.red(err_txt) + " (" + ", ".join(
            f"{k} {fmt_rate(r)}" for k, r in errs.items() if r > 0
        ) + ")"
    conns = v.total("iokernel_connections", **s)
    lines.append(
        f"  requests {fmt_rate(req):>10}   errors {err_txt}"
        f"   in flight {fmt_num(v.total('iokernel_in_flight', **s))}"
        f"   queued {fmt_num(v.total('iokernel_queued', **s))}"
        f"   connections {fmt_num(conns)}"
    )
    for label, name, what in HISTOGRAMS:
        buckets, scope = v.window(name, **s)
        n = sum(c for _, c in buckets)
        lines.append(
            f"  {label:<8} p50 {fmt_q(quantile(buckets, 0.5)):>8}"
            f"  p90 {fmt_q(quantile(buckets, 0.9)):>8}"
            f"  p99 {fmt_q(quantile(buckets, 0.99)):>8}"
            + st.dim(f"   n={n} {scope}; {what}")
        )
    lines.append(
        f"  bytes in {fmt_bytes(v.rate('iokernel_bytes_read_total', **s))}/s"
        f"  out {fmt_bytes(v.rate('iokernel_bytes_written_total', **s))}/s"
        f"   connects {fmt_num(v.total('iokernel_connects_total', **s))}"
        f"  failed {fmt_num(v.total('iokernel_connect_failures_total', **s))}"
        f"  disconnects {fmt_num(v.total('iokernel_disconnects_total', **s))}"
    )
    lines += _endpoint_lines(v, svc, status, st)
    stalls = v.select(v.now, "iokernel_stalls_total", **s)
    if stalls:
        r = v.rate("iokernel_stalls_total", **s)
        txt = f"  stalls {fmt_num(_sum(stalls))} ({fmt_rate(r)})"
        lines.append(st.red(txt) if r > 0 else txt)
    if status is not None:
        conns_detail = status.get("connections") or []
        for c in conns_detail[:8]:
            lines.append(
                st.dim(
                    f"    conn #{c.get('id')} {c.get('address')}"
                    f"{' dedicated' if c.get('dedicated') else ''}"
                    f"  in flight {c.get('in_flight')}  age {fmt_age(float(c.get('age_s') or 0))}"
                    f"  in {fmt_bytes(float(c.get('bytes_in') or 0))}"
                    f" out {fmt_bytes(float(c.get('bytes_out') or 0))}"
                )
            )
        if len(conns_detail) > 8:
            lines.append(st.dim(f"    … {len(conns_detail) - 8} more connections"))
    return lines


def _endpoint_lines(v: _View, svc: str, status: dict[str, Any] | None, st: _Style) -> list[str]:
    """One line per endpoint (from the metrics file; state, in flight and
    the balancer's latency estimate from /status): which replica is slow."""
    live = {e.get("address"): e for e in (status or {}).get("endpoints") or []}
    addrs = [parse_labels(lab).get("address") for (n, lab) in v.now.series
             if n == "iokernel_endpoint_requests_total" and parse_labels(lab).get("service") == svc]
    out = []
    for a in sorted({x for x in addrs if x} | {x for x in live if x}):
        w = {"service": svc, "address": a}
        buckets, _ = v.window("iokernel_endpoint_latency_seconds", **w)
        e = live.get(a, {})
        errs = v.rate("iokernel_endpoint_errors_total", **w)
        err = st.red(fmt_rate(errs)) if errs > 0 else fmt_rate(errs)
        state = _health(st, str(e["state"])) if "state" in e else st.dim("gone?")
        ewma = f"  ewma {fmt_seconds(e['latency_ms'] / 1000)}" if "latency_ms" in e else ""
        inf = f"  in flight {e['in_flight']}" if "in_flight" in e else ""
        out.append(f"  @ {a:<22} {state:<10} req {fmt_rate(v.rate('iokernel_endpoint_requests_total', **w)):>9}"
                   f"  err {err}  p50 {fmt_q(quantile(buckets, 0.5)):>8}"
                   f"  p99 {fmt_q(quantile(buckets, 0.99)):>8}{ewma}{inf}")
    return out if len(out) > 1 or any(e.get("state") != "up" for e in live.values()) else []


def _app_block(v: _View, st: _Style, limit: int = 30) -> list[str]:
    rows = [
        (key, row)
        for key, row in sorted(v.now.series.items())
        if not row.get("kernel") and not key[0].startswith("iokernel_")
    ]
    if not rows:
        return []
    lines = [st.bold("APPLICATION METRICS")]
    for (name, labels), row in rows[:limit]:
        label = f"{name}{{{labels}}}" if labels else name
        kind = row.get("kind")
        if kind == "counter":
            r = v.rate(name) if not labels else _rate_one(v, (name, labels))
            desc = f"{fmt_num(float(row['value'])):>12}  {fmt_rate(r)}"
        elif kind == "gauge":
            desc = f"{fmt_num(float(row['value'])):>12}"
        else:
            buckets = [(float(u), int(n)) for u, n in row.get("buckets") or ()]
            prev = v.prev.series.get((name, labels)) if v.prev is not None else None
            count = int(row.get("count") or 0)
            r = float(count - int(prev.get("count") or 0) if prev else count) / v.dt
            mean = float(row["value"]) / count if count else None
            desc = (
                f"{'n=' + str(count):>12}  {fmt_rate(max(0.0, r))}"
                f"  mean {fmt_seconds(mean)}  p50 {fmt_q(quantile(buckets, 0.5))}"
                f"  p99 {fmt_q(quantile(buckets, 0.99))}"
            )
        lines.append(f"  {label:<48} {kind:<9} {desc}")
    if len(rows) > limit:
        lines.append(st.dim(f"  … {len(rows) - limit} more series (python -m iokernel metrics PID)"))
    return lines


def _rate_one(v: _View, key: Key) -> float:
    now = float(v.now.series[key]["value"])
    before = 0.0
    if v.prev is not None and key in v.prev.series:
        before = float(v.prev.series[key]["value"])
    return max(0.0, now - before) / v.dt


def render_frame(
    now: Snapshot,
    prev: Snapshot | None,
    *,
    path: str,
    state: str | None,
    status: dict[str, Any] | None = None,
    admin_note: str = "",
    color: bool = False,
) -> str:
    """One frame of ``top`` as text."""
    st = _Style(color)
    v = _View(now, prev)
    scope = "rates over the last interval" if prev is not None else "rates averaged since start"
    state_txt = state or "not running (file left behind)"
    if state in ("stopped", "traced") or state is None:
        state_txt = st.red(state_txt)
    lines = [
        st.bold(f"iokernel top — pid {now.pid}")
        + f"  {state_txt}  up {fmt_age(now.uptime())}  "
        + time.strftime("%H:%M:%S")
        + st.dim(f"  ({scope})"),
        st.dim(f"metrics {path}"),
    ]
    if admin_note:
        lines.append(st.dim(admin_note))
    by_name: dict[str, dict[str, Any]] = {}
    if status is not None:
        for s in status.get("services") or []:
            by_name[str(s.get("name"))] = s
    svcs = services(now)
    for extra in by_name:
        if extra not in svcs:
            svcs.append(extra)
    lines.append("")
    if not svcs:
        lines.append(st.dim("no services yet (no iokernel client has been created)"))
        lines.append("")
    for svc in svcs:
        lines += _service_block(v, svc, by_name.get(svc), st)
        lines.append("")
    # process-wide kernel series without a service label (e.g. stalls)
    loose = [
        (k, r) for k, r in now.series.items()
        if k[0].startswith("iokernel_") and "service" not in parse_labels(k[1])
    ]
    for (name, labels), row in sorted(loose):
        if row.get("kind") == "histogram":
            continue
        label = f"{name}{{{labels}}}" if labels else name
        r = _rate_one(v, (name, labels)) if row.get("kind") == "counter" else None
        txt = f"{label} {fmt_num(float(row['value']))}" + (f" ({fmt_rate(r)})" if r else "")
        lines.append(st.red(txt) if name == "iokernel_stalls_total" and r else txt)
    if loose:
        lines.append("")
    lines += _app_block(v, st)
    return "\n".join(lines).rstrip("\n") + "\n"


class _Admin:
    """Fetches /status within 200 ms, remembering which address answered."""

    TIMEOUT = 0.2

    def __init__(self, pid: int | None, address: str | None, enabled: bool) -> None:
        self.enabled = enabled and (pid is not None or address is not None)
        self.pid = pid
        self.address = address
        self.working: str | None = None
        self.note = ""

    def status(self) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        if self.working:
            cands = [self.working]
        elif self.address:
            cands = [self.address]
        else:
            assert self.pid is not None
            cands, _ = admin_addresses(self.pid)
        errors = []
        for a in cands:
            t0 = time.monotonic()
            try:
                code, _, body = http_get(a, "/status", self.TIMEOUT)
                if code != 200:
                    raise AdminError(f"HTTP {code}")
                data = json.loads(body)
            except (AdminError, ValueError) as e:
                errors.append(str(e))
                continue
            self.working = a
            self.note = f"admin {a} answered in {(time.monotonic() - t0) * 1e3:.0f} ms"
            return data if isinstance(data, dict) else None
        self.working = None
        self.note = (
            "admin endpoint: " + (errors[-1] if errors else "none") + " — showing the metrics file only"
        )
        return None


def run_top(args: argparse.Namespace, out: TextIO) -> int:
    pid: int | None = args.pid
    if args.file:
        path = str(args.file)
    elif pid is not None:
        path = str(find_metrics_file(pid))
    else:
        raise CLIError("give a PID or --file PATH")
    interval = max(0.05, float(args.interval))
    tty = not args.plain and out.isatty()
    admin = _Admin(pid, args.address, not args.no_admin)

    def read() -> Snapshot:
        try:
            return Snapshot.read(path)
        except (OSError, ValueError) as e:
            raise CLIError(str(e)) from None

    prev: Snapshot | None = None
    if args.once:
        prev = read()
        time.sleep(interval)
    frames = 1 if args.once else int(args.iterations)
    shown = 0
    if tty:
        out.write("\x1b[2J")
    try:
        while True:
            try:
                now = read()
            except CLIError as e:
                if shown == 0:
                    raise
                out.write(f"\n{e}: the process has exited or removed its metrics file\n")
                return 0
            the_pid = pid if pid is not None else now.pid
            status = admin.status()
            frame = render_frame(
                now,
                prev,
                path=path,
                state=process_state(the_pid),
                status=status,
                admin_note=admin.note,
                color=tty,
            )
            if tty:
                # home, rewrite each line clearing its tail, clear below: no flicker
                width = shutil.get_terminal_size((120, 40)).columns
                clipped = "\x1b[K\n".join(_clip(line, width) for line in frame.split("\n"))
                out.write("\x1b[H" + clipped + "\x1b[J")
            else:
                if shown:
                    out.write("\n")
                out.write(frame)
            out.flush()
            shown += 1
            if frames and shown >= frames:
                return 0
            prev = now
            time.sleep(interval)
    except KeyboardInterrupt:
        if tty:
            out.write("\n")
        return 0


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _clip(line: str, width: int) -> str:
    if len(_ANSI.sub("", line)) <= width:
        return line
    # cut on visible characters, keep escape codes, reset at the end
    visible = 0
    out = []
    i = 0
    while i < len(line) and visible < width - 1:
        m = _ANSI.match(line, i)
        if m:
            out.append(m.group(0))
            i = m.end()
            continue
        out.append(line[i])
        visible += 1
        i += 1
    return "".join(out) + "…\x1b[0m"
