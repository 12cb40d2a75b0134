"""Kernel metrics that the dashboard and `top` rely on: every request gets
its timestamps, and the CLI finds an endpoint on any address."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from iokernel import _native, redis

ROOT = Path(__file__).resolve().parents[2]


def _hist_counts(service: str, name: str) -> int:
    _, _, series = _native.read_metrics()
    return sum(int(s["count"]) for s in series
               if s["name"] == name and f'service="{service}"' in s["labels"])


def test_every_request_gets_first_byte_and_network_times(redis_url: str) -> None:
    ar = redis.AsyncClient(redis_url, client_name="stamps", health_check_interval=None)
    svc = ar.url
    before_net = _hist_counts(svc, "iokernel_network_seconds")
    before_fb = _hist_counts(svc, "iokernel_first_byte_seconds")

    async def main() -> None:
        # Many replies per read: each request still gets its own stamps.
        await asyncio.gather(*(ar.echo(str(i)) for i in range(500)))

    asyncio.run(main())
    net = _hist_counts(svc, "iokernel_network_seconds") - before_net
    fb = _hist_counts(svc, "iokernel_first_byte_seconds") - before_fb
    assert net == 500
    assert fb == 500


def test_cli_finds_an_endpoint_served_on_tcp(redis_url: str) -> None:
    code = textwrap.dedent(f"""
        import sys, time
        from iokernel import admin, redis
        print(admin.serve("tcp:127.0.0.1:0"), flush=True)
        redis.Client({redis_url!r}).ping()
        time.sleep(30)
    """)
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT, env={**os.environ, "IOKERNEL_ADMIN": ""})
    try:
        assert child.stdout is not None
        bound = child.stdout.readline().strip()
        assert bound.startswith("tcp:127.0.0.1:")
        deadline = time.monotonic() + 10
        while True:
            p = subprocess.run([sys.executable, "-m", "iokernel", "status", str(child.pid)],
                               capture_output=True, text=True, timeout=20, cwd=ROOT, check=False)
            if p.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert p.returncode == 0, p.stderr
        assert f'"pid": {child.pid}' in p.stdout or f'"pid":{child.pid}' in p.stdout
    finally:
        child.kill()
        child.wait(10)
