"""Instructions per command, counted by valgrind (callgrind), for a loaded machine.

Wall-clock numbers on a shared 2-core machine swing by tens of percent; the
number of instructions the client process executes per command does not. This
runs one scenario twice under ``valgrind --tool=callgrind`` (all threads of the
Python process: the event loop or caller threads and the kernel thread; not
redis-server, which is another process) with ``--ops`` and ``2 * --ops``
commands, and prints the difference divided by ``--ops``: start-up, imports and
warm-up cancel out.

    python bench/callgrind_ops.py [--case get-async] [--ops 20000] [--conc 50] [--tls]

Cases: ``get-async`` / ``set-async`` (iokernel ``AsyncClient``, ``--conc``
tasks), ``floor-async`` (bench/floor.py's eventfd floor: what asyncio itself
costs to await a future resolved from another thread), ``get-threads``
/ ``set-threads`` (iokernel ``Client``, ``--conc`` threads). Uses $IOKERNEL_BENCH_REDIS_URL if
set, otherwise starts its own redis-server. ``--tls``: the same cases over TLS
(``rediss://``, the CA verified) against a redis-server with a TLS port
(tests/tls/servers.py, certificates made with openssl), and, in the same run,
over that server's plain port, for the cost of TLS per command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (str(HERE), str(HERE.parent)):
    if p not in sys.path:
        sys.path.insert(0, p)

CASES = ("get-async", "set-async", "floor-async", "get-threads", "set-threads")


def _child(case: str, url: str, ops: int, conc: int) -> None:
    from cases import KEY, VALUE, split

    if case in ("get-threads", "set-threads"):
        from iokernel import redis

        c = redis.Client(url)
        c.get(KEY)

        def body(n: int) -> None:
            get, set_ = c.get, c.set
            if case == "get-threads":
                for _ in range(n):
                    get(KEY)
            else:
                for _ in range(n):
                    set_(KEY, VALUE)

        ts = [threading.Thread(target=body, args=(n,)) for n in split(ops, conc)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return

    async def main() -> None:
        if case == "floor-async":
            from floor import FloorKernel

            fk = FloorKernel(asyncio.get_running_loop(), "eventfd")
            op, close = (lambda: fk.get(KEY)), fk.close
        else:
            from iokernel import redis

            c = redis.AsyncClient(url)
            get, set_ = c.get, c.set
            op = (lambda: get(KEY)) if case == "get-async" else (lambda: set_(KEY, VALUE))

            def close() -> None:
                pass

        async def worker(n: int) -> None:
            for _ in range(n):
                await op()

        await asyncio.gather(*(worker(3) for _ in range(conc)))
        await asyncio.gather(*(worker(n) for n in split(ops, conc)))
        close()

    asyncio.run(main())


def _count(case: str, url: str, ops: int, conc: int) -> int:
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
             sys.executable, __file__, "--child", case, url, str(ops), str(conc)],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        total = 0
        for name in os.listdir(d):  # one file per thread with --separate-threads
            with open(os.path.join(d, name)) as f:
                m = re.search(r"^summary:\s+(\d+)", f.read(), re.M)
                if m:
                    total += int(m.group(1))
        return total


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--case", default="get-async", choices=CASES)
    ap.add_argument("--ops", type=int, default=20_000)
    ap.add_argument("--conc", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1, help="repeat; print each and the median")
    ap.add_argument("--tls", action="store_true",
                    help="over TLS, and over the same server's plain port")
    args = ap.parse_args()
    from cases import KEY, VALUE, raw_command
    from run import redis_server

    with contextlib.ExitStack() as stack:
        if args.tls:
            urls = _tls_urls(stack)
        else:
            url, _how = stack.enter_context(redis_server())
            urls = {"": url}
        raw_command(urls[next(iter(urls))], "SET", KEY, VALUE.decode())
        for label, url in urls.items():
            pers = []
            for _ in range(args.rounds):
                a = _count(args.case, url, args.ops, args.conc)
                b = _count(args.case, url, 2 * args.ops, args.conc)
                pers.append((b - a) / args.ops)
                print(f"{args.case}{label}: {pers[-1]:,.0f} instructions per command "
                      f"(conc {args.conc}; {a:,} at {args.ops:,} ops, {b:,} at {2 * args.ops:,})")
            if args.rounds > 1:
                print(f"{args.case}{label}: median {statistics.median(pers):,.0f} "
                      f"over {args.rounds} rounds")
    return 0


def _tls_urls(stack: contextlib.ExitStack) -> dict[str, str]:
    """A redis-server with a TLS port: its plain and its TLS URL."""
    from tests.tls.certs import make_certs
    from tests.tls.servers import RedisTlsServer

    d = stack.enter_context(tempfile.TemporaryDirectory(prefix="iok-cg-tls-"))
    certs = make_certs(Path(d) / "certs")
    srv = stack.enter_context(RedisTlsServer(certs, certs.server))
    return {
        " (plain)": f"redis://127.0.0.1:{srv.port}/0",
        " (TLS)": srv.tls_url(query=f"ssl_ca_certs={certs.ca}"),
    }


if __name__ == "__main__":
    sys.exit(main())
