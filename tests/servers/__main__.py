"""`python -m tests.servers KIND [options] [-- CMD ...]`: the command line
described in tests/servers/__init__.py (used by the Makefile's demo and bench).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import tests.servers
from tests.servers import SERVER_KINDS, PostgresServer, RedisServer


def _main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cmd: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, cmd = argv[:i], argv[i + 1 :]
    ap = argparse.ArgumentParser(prog="python -m tests.servers", description=tests.servers.__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("kind", choices=sorted(SERVER_KINDS))
    ap.add_argument("--port", type=int, default=None, help="default: a free port")
    ap.add_argument("--password", default=None)
    ap.add_argument("--env", action="append", default=[], metavar="NAME",
                    help="also export the URL as NAME (repeatable)")
    ap.add_argument("--reuse-env", action="store_true",
                    help="if the first --env variable is already set, use that server")
    ap.add_argument("--pidfile", default=None, help="without a command: write our pid here")
    args = ap.parse_args(argv)

    kind = SERVER_KINDS[args.kind]
    names = [getattr(kind, "env_name", "IOKERNEL_REDIS_URL"), *args.env]
    if args.reuse_env and cmd and args.env and os.environ.get(args.env[0]):
        url = os.environ[args.env[0]]
        print(f"[servers] using {args.env[0]}={url}", file=sys.stderr, flush=True)
        env = dict(os.environ)
        for n in names:
            env.setdefault(n, url)
        return subprocess.call(cmd, env=env)

    kwargs: dict[str, Any] = {"port": args.port}
    if args.password is not None:
        kwargs["password"] = args.password
    srv = kind(**kwargs)
    stop = False

    def _on_signal(signum: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    try:
        srv.start()
        url = srv.url() if isinstance(srv, (RedisServer, PostgresServer)) else f"{srv.host}:{srv.port}"
        print(f"[servers] {args.kind} at {url} (pid {srv.pid}, dir {srv.dir})",
              file=sys.stderr, flush=True)
        if cmd:
            env = dict(os.environ)
            for n in names:
                env[n] = url
            child = subprocess.Popen(cmd, env=env)
            try:
                return child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
                try:
                    return child.wait(10)
                except subprocess.TimeoutExpired:
                    child.kill()
                    return 130
        signal.signal(signal.SIGTERM, _on_signal)
        signal.signal(signal.SIGINT, _on_signal)
        if args.pidfile:
            Path(args.pidfile).write_text(f"{os.getpid()}\n")
        print(url, flush=True)
        while not stop and srv.running:
            time.sleep(0.2)
        return 0 if stop else 1
    finally:
        srv.stop(cleanup=True)
        if args.pidfile and not cmd:
            with contextlib.suppress(OSError):
                Path(args.pidfile).unlink()


if __name__ == "__main__":
    sys.exit(_main())
