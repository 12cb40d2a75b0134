"""How redis-server batches iokernel's commands, plain text vs TLS, same run.

Over TLS redis-server takes one record per turn of its event loop, so the
size of the client's writes becomes the size of the server's batches (in
plain text it reads everything that has arrived). For each transport this
runs Redis GET from 50 asyncio tasks on one iokernel client and prints
ops/s, the client process's CPU per command, redis-server's CPU per command
(INFO cpu) and commands per server read and per server write (INFO stats
total_reads_processed / total_writes_processed). The counts per read do not
need a quiet machine to compare; the rest does.

    python bench/tls_batches.py [--ops 60000] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from cases import raw_command

from tests.tls.certs import make_certs
from tests.tls.servers import RedisTlsServer

TASKS = 50


def _info(url: str) -> dict[str, str]:
    text = raw_command(url, "INFO", "all")
    text = text.decode() if isinstance(text, bytes) else str(text)
    return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)


async def _run(url: str, kw: dict[str, Any], ops: int) -> tuple[float, float]:
    from iokernel import redis as iok

    c = iok.AsyncClient(url, **kw)
    await asyncio.gather(*(c.get("k") for _ in range(TASKS)))
    per = ops // TASKS

    async def worker() -> None:
        for _ in range(per):
            await c.get("k")

    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(TASKS)))
    wall, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    await c.close()
    return per * TASKS / wall, (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ops", type=int, default=60_000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    certs = make_certs(Path(tempfile.mkdtemp(prefix="iok-tlsbatch-")) / "certs")
    with RedisTlsServer(certs, certs.server) as srv:
        plain = f"redis://127.0.0.1:{srv.port}/0"
        raw_command(plain, "SET", "k", "v" * 16)
        rows = (("plain", plain, {}), ("TLS", srv.tls_url(), {"ssl_ca_certs": certs.ca}))
        for _ in range(args.rounds):
            for name, url, kw in rows:
                i0 = _info(plain)
                rate, cpu = asyncio.run(_run(url, kw, args.ops))
                i1 = _info(plain)

                def d(k: str, i0: dict[str, str] = i0, i1: dict[str, str] = i1) -> float:
                    return float(i1[k]) - float(i0[k])

                server = d("used_cpu_sys") + d("used_cpu_user")
                cmds = d("total_commands_processed")
                print(f"{name:5s} {rate:9,.0f} ops/s  client {cpu / args.ops * 1e6:5.1f} us/cmd  "
                      f"server {server / args.ops * 1e6:5.1f} us/cmd  "
                      f"cmds/read {cmds / d('total_reads_processed'):5.1f}  "
                      f"cmds/write {cmds / max(d('total_writes_processed'), 1):5.1f}  "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
