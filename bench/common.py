"""What the side-by-side benchmarks (run.py, pg_bench.py) share: the
description of the machine and the code saved with every result, and the
number formats of their reports."""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.metadata as md
import os
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


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


def fmt_ops(x: float | None) -> str:
    if x is None:
        return "-"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    return f"{x / 1e3:,.1f} k" if x >= 1e4 else f"{x:,.0f}"


def ratio(a: float | None, b: float | None) -> str:
    return "-" if not a or not b else f"{a / b:.2f}×"
