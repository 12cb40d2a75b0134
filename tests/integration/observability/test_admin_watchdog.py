"""The admin endpoint, served by the kernel thread: it answers while Python spins
or holds the GIL in a C call, its metrics/status/inflight shapes, no secrets
in its output, its socket and address rules, the dashboard; and the watchdog
that counts and logs a blocked event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import stat
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from iokernel import _cli, _native, redis
from tests.conftest import AUTH_USER, AUTH_USER_PASSWORD
from tests.integration.observability.child import PY, ROOT, Child, cli
from tests.servers import RedisServer


# ------------------------------------------------------- admin endpoint
def _get(address: str, path: str, timeout: float = 5.0) -> tuple[float, int, dict[str, str], bytes]:
    t0 = time.perf_counter()
    status, headers, body = _cli.http_get(address, path, timeout)
    return time.perf_counter() - t0, status, headers, body


ADMIN_CHILD = """
    import os, re, sys, threading, time
    import iokernel
    from iokernel import metrics, redis
    r = redis.Client({url!r})
    r.set("k", "v")
    print("admin", iokernel.admin.address(), flush=True)
    ticks = metrics.counter("ticker_total", "a Python thread's heartbeat")

    def ticker():
        while True:
            ticks.inc()
            time.sleep(0.001)

    threading.Thread(target=ticker, daemon=True, name="ticker").start()
    while ticks.get() < 20:  # the ticker runs (on a busy machine it starts late)
        time.sleep(0.01)

    def spin_forever_in_python():
        x = 0
        while True:
            x += 1

    def hold_the_gil_in_c(n):
        # catastrophic backtracking: the re engine runs in C and never
        # releases the GIL
        return re.match(r"(a+)+$", "a" * n + "b")

    mode = MODE
    print("go", mode, flush=True)
    if mode == "spin":
        spin_forever_in_python()
    else:
        while True:
            hold_the_gil_in_c(int(mode))
"""


def _spawn_admin_child(mdir: str, url: str, mode: str, children: list[Child],
                       env: dict[str, str] | None = None) -> tuple[Child, str]:
    code = ADMIN_CHILD.format(url=url).replace("mode = MODE", f"mode = {mode!r}")
    child = Child(code, mdir, env=env)
    children.append(child)
    addr = child.expect("admin ")
    child.expect("go ")
    return child, addr


def _ticker(pid: int) -> float:
    path = _cli.find_metrics_file(pid)
    for r in _native.read_metrics(str(path))[2]:
        if r["name"] == "ticker_total":
            return float(r["value"])
    return -1.0


def _latencies(addr: str, reps: int = 5) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for _ in range(reps):
        for p in ("/status", "/inflight", "/metrics", "/stacks"):
            dt, status, _, _ = _get(addr, p)
            assert status == 200, p
            out.setdefault(p, []).append(dt)
    return out


def _report(label: str, lat: dict[str, list[float]]) -> str:
    worst = max(max(v) for v in lat.values())
    med = sorted(x for v in lat.values() for x in v)[len([x for v in lat.values() for x in v]) // 2]
    line = f"{label}: admin median {med * 1e3:.2f} ms, worst {worst * 1e3:.2f} ms"
    print(line)
    rep = os.environ.get("IOK_OBS_REPORT")
    if rep:
        with open(rep, "a") as f:
            f.write(line + "\n")
    return line


def test_admin_answers_while_python_spins(mdir: str, redis_url: str, children: list[Child]) -> None:
    child, addr = _spawn_admin_child(mdir, redis_url, "spin", children)
    assert addr.startswith("unix:"), addr
    assert addr == f"unix:{Path(mdir) / f'{child.pid}.sock'}"
    # Measure only once it spins (its stack shows the loop), however late
    # the child gets there on a busy machine.
    deadline = time.monotonic() + 20
    while "spin_forever_in_python" not in _get(addr, "/stacks")[3].decode():
        assert time.monotonic() < deadline, "the child never reached its loop"
        time.sleep(0.05)
    lat = _latencies(addr)
    _report("pure-Python spin", lat)
    assert max(max(v) for v in lat.values()) < 1.0, lat
    _, _, headers, body = _get(addr, "/stacks")
    text = body.decode()
    assert "spin_forever_in_python" in text, text
    assert "most recent call first" in text
    assert re.search(r'File ".*", line \d+ in spin_forever_in_python', text), text
    assert "ticker" in text or text.count("Thread 0x") >= 2, text
    assert headers.get("content-type", "").startswith("text/plain")
    # the CLI gets the same through the default socket
    out = cli("stacks", str(child.pid), timeout=10)
    assert out.returncode == 0, out.stderr
    assert "spin_forever_in_python" in out.stdout


def test_admin_answers_while_a_c_call_holds_the_gil(
    mdir: str, redis_url: str, children: list[Child]
) -> None:
    # Size the regex so one call holds the GIL for about 2 s on this machine.
    n = 18
    while n < 40:
        t0 = time.perf_counter()
        re.match(r"(a+)+$", "a" * n + "b")
        if time.perf_counter() - t0 > 0.06:
            break
        n += 1
    n += 5  # x32: ~2 s
    child, addr = _spawn_admin_child(mdir, redis_url, str(n), children)
    assert _ticker(child.pid) > 10, "the ticker thread should have run before the C call"
    time.sleep(0.3)
    # The GIL is really held: the ticker thread makes no progress at all.
    t1 = _ticker(child.pid)
    time.sleep(0.3)
    t2 = _ticker(child.pid)
    if t2 != t1:  # we may have caught the gap between two calls; try once more
        time.sleep(0.05)
        t1 = _ticker(child.pid)
        time.sleep(0.3)
        t2 = _ticker(child.pid)
    assert t1 == t2, f"the ticker thread ran ({t1} -> {t2}): the GIL was not held"
    lat = _latencies(addr, reps=2)
    _report("GIL held in C (re backtracking)", lat)
    assert max(max(v) for v in lat.values()) < 1.0, lat
    _, _, _, body = _get(addr, "/stacks")
    assert "hold_the_gil_in_c" in body.decode(), body.decode()


def test_metrics_endpoint_parses_and_has_kernel_metrics(
    mdir: str, redis_url: str, children: list[Child]
) -> None:
    child, addr = _spawn_admin_child(mdir, redis_url, "spin", children)
    _, status, headers, body = _get(addr, "/metrics")
    assert status == 200
    assert headers.get("content-type", "").startswith("text/plain")
    fams = {f.name: f for f in text_string_to_metric_families(body.decode())}
    svc = redis_url
    for name in (
        "iokernel_requests", "iokernel_errors", "iokernel_in_flight", "iokernel_queued",
        "iokernel_connections", "iokernel_connects", "iokernel_connect_failures",
        "iokernel_disconnects", "iokernel_bytes_written", "iokernel_bytes_read",
        "iokernel_network_seconds", "iokernel_pickup_seconds", "iokernel_queue_seconds",
        "ticker",
    ):
        assert name in fams, f"{name} missing from /metrics: {sorted(fams)}"
    services = {s.labels.get("service") for s in fams["iokernel_requests"].samples}
    assert svc in services, services
    req = next(s.value for s in fams["iokernel_requests"].samples
               if s.labels.get("service") == svc)
    assert req >= 1
    assert any(s.labels.get("address") for s in fams["iokernel_connections"].samples)
    # /metrics over HTTP and the file read from outside agree on the kernel's series
    offline = cli("metrics", str(child.pid))
    assert offline.returncode == 0
    assert "iokernel_requests_total" in offline.stdout


def test_status_and_inflight_shapes(mdir: str, redis_url: str, redis_server: RedisServer,
                                    children: list[Child]) -> None:
    code = f"""
        import threading, time, iokernel
        from iokernel import redis
        r = redis.Client({redis_url!r}, timeout=30)
        r.set("k", "v")
        threading.Thread(target=lambda: r.blpop("a-queue-key", timeout=20), daemon=True).start()
        print("admin", iokernel.admin.address(), flush=True)
        time.sleep(60)
    """
    child = Child(code, mdir)
    children.append(child)
    addr = child.expect("admin ")
    deadline = time.monotonic() + 20
    inflight: dict[str, Any] = {}
    while time.monotonic() < deadline:
        inflight = json.loads(_get(addr, "/inflight")[3])
        if inflight.get("requests"):
            break
        time.sleep(0.05)
    assert set(inflight) >= {"requests", "truncated"}, inflight
    reqs = inflight["requests"]
    assert len(reqs) == 1, inflight
    r0 = reqs[0]
    assert set(r0) >= {"service", "address", "connection", "command", "age_ms", "timed_out"}
    assert r0["command"] == "BLPOP"
    assert r0["service"] == redis_url
    assert r0["timed_out"] is False and r0["age_ms"] >= 0
    assert "a-queue-key" not in json.dumps(inflight)
    st = json.loads(_get(addr, "/status")[3])
    assert st["pid"] == child.pid and st["uptime_s"] > 0
    (svc,) = [s for s in st["services"] if s["name"] == redis_url]
    assert svc["protocol"] == "redis" and svc["health"] == "up"
    assert svc["last_error"] is None
    assert svc["outstanding"] >= 1 and svc["queued"] == 0
    assert svc["limits"]["max_in_flight"] > 0 and svc["limits"]["max_queued"] > 0
    conns = svc["connections"]
    assert any(c["dedicated"] for c in conns) and any(not c["dedicated"] for c in conns)
    for c in conns:
        assert c["address"] == f"127.0.0.1:{redis_server.port}"
        assert c["age_s"] >= 0 and c["bytes_out"] > 0 and isinstance(c["id"], int)
    assert sum(c["in_flight"] for c in conns) >= 1


def test_inflight_names_pipelines_and_marks_timeouts(fresh_redis_server: RedisServer) -> None:
    import iokernel

    addr = iokernel.admin.serve()
    url = fresh_redis_server.url()
    client = redis.AsyncClient(url, timeout=0.3)

    async def main() -> dict[str, Any]:
        await client.ping()
        with fresh_redis_server.frozen():
            # transaction=False: three commands on the wire (a transaction
            # pipeline, redis-py's default, adds MULTI and EXEC).
            p = client.pipeline(transaction=False)
            p.get("a")
            p.set("pipeline-secret-key", "pipeline-secret-value")
            p.get("c")
            t1 = asyncio.ensure_future(p.execute())
            t2 = asyncio.ensure_future(client.get("plain-secret-key"))
            # Both time out 0.3 s after they are sent; about a second later
            # the kernel resets the silent connection and they leave
            # /inflight. Look until both show as timed out, however late
            # this process gets to run on a busy machine.
            deadline = time.monotonic() + 10
            while True:
                body = (await asyncio.to_thread(_get, addr, "/inflight"))[3]
                mine = [r for r in json.loads(body)["requests"] if r["service"] == url]
                if len(mine) == 2 and all(r["timed_out"] for r in mine):
                    break
                assert time.monotonic() < deadline, body
                await asyncio.sleep(0.02)
            for t in (t1, t2):
                with pytest.raises(TimeoutError):
                    await t
        await client.close()
        return dict(json.loads(body))

    inflight = asyncio.run(main())
    mine = [r for r in inflight["requests"] if r["service"] == url]
    assert sorted(r["command"] for r in mine) == ["GET", "PIPELINE(3)"], inflight
    assert all(r["timed_out"] for r in mine), inflight
    assert all(r["age_ms"] >= 300 for r in mine), inflight
    assert "secret" not in json.dumps(inflight)


SECRET_CHILD = """
    import logging, sys, time, iokernel
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    from iokernel import redis
    good = redis.Client({good!r})
    good.set("the-secret-key-k9", "the-secret-value-v9")
    assert good.get("the-secret-key-k9") == b"the-secret-value-v9"
    bad = redis.Client({bad!r}, timeout=2)
    try:
        bad.get("x")
    except Exception as e:
        print("error", type(e).__name__, str(e).replace(chr(10), " "), flush=True)
    else:
        print("error none", flush=True)
    print("admin", iokernel.admin.address(), flush=True)
    time.sleep(60)
"""


def test_no_secrets_in_admin_output_or_logs(
    mdir: str, redis_auth_server: RedisServer, children: list[Child],
    caplog: pytest.LogCaptureFixture,
) -> None:
    srv = redis_auth_server
    good = srv.url(user=AUTH_USER, password=AUTH_USER_PASSWORD)
    wrong_pw = "hunter2-wrong-pw"
    bad = srv.url(user=AUTH_USER, password=wrong_pw)
    assert AUTH_USER_PASSWORD in good and wrong_pw in bad
    child = Child(SECRET_CHILD.format(good=good, bad=bad), mdir)
    children.append(child)
    err = child.expect("error ")
    assert wrong_pw not in err and AUTH_USER_PASSWORD not in err
    addr = child.expect("admin ")
    secrets = [AUTH_USER_PASSWORD, wrong_pw, "the-secret-key-k9", "the-secret-value-v9"]
    bodies = {p: _get(addr, p)[3].decode() for p in ("/status", "/inflight", "/metrics", "/")}
    for p, body in bodies.items():
        for s in secrets:
            assert s not in body, f"{s!r} leaked in {p}"
    st = json.loads(bodies["/status"])
    names = [s["name"] for s in st["services"]]
    assert len(names) == 2, names
    assert all(AUTH_USER_PASSWORD not in n for n in names)
    down = [s for s in st["services"] if s["health"] != "up"]
    assert down and down[0]["last_error"], st
    # logs: the child's stderr (logging at DEBUG) and this process's log records
    with caplog.at_level(logging.DEBUG):
        r = redis.Client(bad, timeout=2)
        with pytest.raises(Exception) as ei:
            r.get("x")
        r.close()
    assert wrong_pw not in str(ei.value)
    log_text = child.stderr() + "\n".join(rec.getMessage() for rec in caplog.records)
    for s in secrets:
        assert s not in log_text, f"{s!r} leaked in logs"


def test_unix_socket_is_private(mdir: str, redis_url: str, children: list[Child]) -> None:
    _child, addr = _spawn_admin_child(mdir, redis_url, "spin", children)
    path = addr.removeprefix("unix:")
    mode = os.stat(path).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600, oct(mode)


def test_admin_env_off_and_tcp_rules(mdir: str, redis_url: str, children: list[Child]) -> None:
    code = f"""
        import iokernel
        from iokernel import redis
        r = redis.Client({redis_url!r})
        r.ping()
        print("auto", iokernel.admin.address(), flush=True)
        try:
            iokernel.admin.serve("tcp:0.0.0.0:0")
        except Exception as e:
            print("remote", type(e).__name__, str(e).replace(chr(10), " "), flush=True)
        else:
            print("remote accepted", flush=True)
        a = iokernel.admin.serve("tcp:127.0.0.1:0")
        print("tcp", a, flush=True)
        print("address", iokernel.admin.address(), flush=True)
        import time; time.sleep(60)
    """
    child = Child(code, mdir, env={"IOKERNEL_ADMIN": "off"})
    children.append(child)
    assert child.expect("auto ") == "None"
    assert not (Path(mdir) / f"{child.pid}.sock").exists()
    remote = child.expect("remote ")
    assert not remote.startswith("accepted"), "a non-loopback bind needs allow_remote=True"
    assert "allow_remote" in remote, remote
    tcp = child.expect("tcp ")
    m = re.fullmatch(r"tcp:127\.0\.0\.1:(\d+)", tcp)
    assert m and int(m.group(1)) > 0, tcp
    assert child.expect("address ") == tcp
    _dt, status, _, body = _get(tcp, "/status")
    assert status == 200 and json.loads(body)["pid"] == child.pid
    # a process serving on an address of its own records it (<pid>.admin),
    # so the CLI finds it even though IOKERNEL_ADMIN=off stopped the default
    assert (Path(mdir) / f"{child.pid}.admin").read_text().strip() == tcp
    out = cli("stacks", str(child.pid), "--timeout", "1")
    assert out.returncode == 0 and "most recent call first" in out.stdout, out.stderr
    out = cli("stacks", str(child.pid), "--address", tcp)
    assert out.returncode == 0 and "most recent call first" in out.stdout


def test_admin_env_picks_the_address(mdir: str, redis_url: str, children: list[Child]) -> None:
    sock = str(Path(mdir) / "chosen.sock")
    code = f"""
        import iokernel, time
        from iokernel import redis
        redis.Client({redis_url!r}).ping()
        print("admin", iokernel.admin.address(), flush=True)
        time.sleep(60)
    """
    child = Child(code, mdir, env={"IOKERNEL_ADMIN": f"unix:{sock}"})
    children.append(child)
    assert child.expect("admin ") == f"unix:{sock}"
    # the CLI finds it through the target's environment
    out = cli("status", str(child.pid))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["pid"] == child.pid


def test_dashboard_is_served(mdir: str, redis_url: str, children: list[Child]) -> None:
    _child, addr = _spawn_admin_child(mdir, redis_url, "spin", children)
    _, status, headers, body = _get(addr, "/")
    assert status == 200 and headers.get("content-type", "").startswith("text/html")
    html = body.decode()
    assert html == (ROOT / "src" / "admin" / "dashboard.html").read_text()
    # relative URLs only, no external assets
    assert not re.search(r"""(src|href)=["']/""", html)
    assert "fetch(\"/" not in html and "http://" not in html and "https://" not in html


# --------------------------------------------------------------- watchdog
WATCHDOG_CHILD = """
    import asyncio, logging, sys, time
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    from iokernel import _native, redis

    def block_the_loop_for_a_while():
        time.sleep(1.0)

    async def main():
        c = redis.AsyncClient({url!r})
        await c.ping()
        t = asyncio.ensure_future(c.get("x"))
        await asyncio.sleep(0)
        block_the_loop_for_a_while()
        await t
        await asyncio.sleep(0.05)
        await c.close()

    asyncio.run(main())
    for r in _native.read_metrics()[2]:
        if r["name"] == "iokernel_stalls_total":
            print("stalls", r["value"], flush=True)
    print("done", flush=True)
"""


def test_watchdog_counts_and_logs_a_blocked_loop(mdir: str, redis_url: str) -> None:
    out = subprocess.run(
        [PY, "-c", textwrap.dedent(WATCHDOG_CHILD.format(url=redis_url))],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "IOKERNEL_METRICS_DIR": mdir, "IOKERNEL_WATCHDOG_MS": "200"},
    )
    assert out.returncode == 0, out.stderr
    assert "stalls 1.0" in out.stdout, (out.stdout, out.stderr)
    # logged through `logging` once the loop ran again, with the stacks of that moment
    assert "WARNING:iokernel:" in out.stderr, out.stderr
    assert "for Python to pick them up" in out.stderr
    assert "block_the_loop_for_a_while" in out.stderr, out.stderr


def test_stalls_counter_exists_before_the_first_stall(
    mdir: str, redis_url: str, children: list[Child]
) -> None:
    """A counter that appears only when it first counts makes
    `rate(iokernel_stalls_total[5m]) > 0` alerts see "no data" instead of 0,
    and `top`/dashboards cannot show it; it should be exported from the start."""
    _child, addr = _spawn_admin_child(mdir, redis_url, "spin", children)
    fams = {f.name: f for f in text_string_to_metric_families(_get(addr, "/metrics")[3].decode())}
    assert "iokernel_stalls" in fams, sorted(fams)
    assert [s.value for s in fams["iokernel_stalls"].samples if s.name.endswith("_total")] == [0]
