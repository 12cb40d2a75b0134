"""Command line tools behind ``python -m iokernel``.

Everything here works from *another* process than the one being inspected:

* ``metrics`` and ``top`` read the target's metrics file (shared memory
  backed by ``<metrics dir>/<pid>.metrics``), so they work while the target
  is stuck, stopped (SIGSTOP) or even dead, as long as the file is there.
* ``stacks``, ``status`` and ``inflight`` ask the target's admin endpoint,
  which the target's kernel thread serves without the GIL.

Where a process's files are and how its admin endpoint is asked is in
``_target`` (shared with ``_top``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from ._target import (
    AdminError,
    CLIError,
    admin_addresses,
    admin_get,
    find_metrics_file,
    http_get,
    metrics_dir,
    parse_address,
    process_state,
)

__all__ = [
    "AdminError",
    "CLIError",
    "admin_addresses",
    "find_metrics_file",
    "http_get",
    "main",
    "metrics_dir",
    "parse_address",
    "process_state",
]


# ------------------------------------------------------------------ commands
def _metrics_path(args: argparse.Namespace) -> str:
    if args.file:
        return str(args.file)
    if args.pid is None:
        raise CLIError("give a PID or --file PATH")
    return str(find_metrics_file(args.pid))


def cmd_metrics(args: argparse.Namespace, out: TextIO) -> int:
    from . import _native

    path = _metrics_path(args)
    try:
        text = _native.render_metrics(path)
    except (OSError, ValueError) as e:
        raise CLIError(str(e)) from None
    out.write(text)
    return 0


def cmd_stacks(args: argparse.Namespace, out: TextIO) -> int:
    body = admin_get(args.pid, args.address, "/stacks", args.timeout)
    out.write(body.decode(errors="replace"))
    if body and not body.endswith(b"\n"):
        out.write("\n")
    return 0


def cmd_json(path: str) -> Any:
    def run(args: argparse.Namespace, out: TextIO) -> int:
        body = admin_get(args.pid, args.address, path, args.timeout)
        if args.raw:
            out.write(body.decode(errors="replace") + "\n")
            return 0
        try:
            data = json.loads(body)
        except ValueError:
            raise AdminError(f"GET {path}: not JSON: {body[:200]!r}") from None
        out.write(json.dumps(data, indent=2) + "\n")
        return 0

    return run


def cmd_top(args: argparse.Namespace, out: TextIO) -> int:
    from ._top import run_top

    return run_top(args, out)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m iokernel",
        description="Look inside a running iokernel process, even when its Python is stuck.",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    m = sub.add_parser(
        "metrics",
        help="print a process's metrics (Prometheus text) from its metrics file",
        description="Print PID's metrics in the Prometheus text format, read from its "
        "metrics file: works while the process is stuck, stopped, or dead (if the file "
        "is still there).",
    )
    m.add_argument("pid", type=int, nargs="?", help="process id")
    m.add_argument("--file", help="read this metrics file instead of finding PID's")
    m.set_defaults(func=cmd_metrics)

    def admin_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("pid", type=int, nargs="?", help="process id")
        sp.add_argument(
            "--address",
            help="admin endpoint: unix:/path or tcp:127.0.0.1:PORT "
            "(default: PID's IOKERNEL_ADMIN, else <metrics dir>/<pid>.sock)",
        )
        sp.add_argument("--timeout", type=float, default=5.0, help="seconds (default 5)")

    s = sub.add_parser(
        "stacks",
        help="print every Python thread's stack (admin endpoint, taken without the GIL)",
    )
    admin_opts(s)
    s.set_defaults(func=cmd_stacks)

    for name, path, what in (
        ("status", "/status", "services, health, limits and connections"),
        ("inflight", "/inflight", "requests in flight with their age"),
    ):
        j = sub.add_parser(name, help=f"{what} (admin endpoint, JSON)")
        admin_opts(j)
        j.add_argument("--raw", action="store_true", help="print the body as received")
        j.set_defaults(func=cmd_json(path))

    t = sub.add_parser(
        "top",
        help="live view: request and error rates, latency percentiles, connections",
        description="A live view of PID's services from its metrics file (works while "
        "its Python is stuck), enriched from its admin endpoint when that answers "
        "within 200 ms.",
    )
    t.add_argument("pid", type=int, nargs="?", help="process id")
    t.add_argument("--file", help="read this metrics file instead of finding PID's")
    t.add_argument("--address", help="admin endpoint to enrich from (default: PID's)")
    t.add_argument("--interval", type=float, default=1.0, help="seconds between frames")
    t.add_argument(
        "--once", action="store_true", help="one frame (rates over one interval), then exit"
    )
    t.add_argument("--iterations", type=int, default=0, help="stop after N frames")
    t.add_argument("--no-admin", action="store_true", help="never ask the admin endpoint")
    t.add_argument(
        "--plain", action="store_true", help="no screen redraw even on a terminal"
    )
    t.set_defaults(func=cmd_top)
    return p


def _fail(msg: str) -> NoReturn:
    print(f"iokernel: {msg}", file=sys.stderr)
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        rc: int = args.func(args, out or sys.stdout)
    except CLIError as e:
        _fail(str(e))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `python -m iokernel metrics PID | head`: not an error.
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        except OSError:
            pass
        return 0
    return rc
