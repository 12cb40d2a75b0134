"""Metrics from outside the process: the shared-memory file is read by another
process while the writer is stopped (SIGSTOP), a forked child writes its own
file, and kernel timestamps tell network time from Python pick-up delay.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import time
from pathlib import Path

import pytest

from iokernel import _cli, _native, redis
from tests.integration.observability.child import Child, cli, values

# ------------------------------------------------- metrics from outside
WRITER = """
    import sys, time
    from iokernel import metrics
    c = metrics.counter("work_total", "units of work", labels=("kind",))
    g = metrics.gauge("busy_workers", "workers busy")
    h = metrics.histogram("step_seconds", "step time", buckets=(0.001, 0.01, 0.1))
    print("path", metrics.path(), flush=True)
    n = 0
    while True:
        n += 1
        c.labels(kind="a").inc()
        c.labels("b").inc(2)
        g.set(n % 7)
        h.observe(0.005)
        if n == 1000:
            print("ready", flush=True)
        if n % 100 == 0:
            time.sleep(0.001)
"""


def test_metrics_readable_by_another_process_while_writer_is_stopped(
    mdir: str, children: list[Child]
) -> None:
    child = Child(WRITER, mdir)
    children.append(child)
    path = child.expect("path ")
    assert Path(path) == Path(mdir) / f"{child.pid}.metrics"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    child.expect("ready")
    os.kill(child.pid, signal.SIGSTOP)
    try:
        # wait until the kernel reports it stopped
        deadline = time.monotonic() + 5
        while _cli.process_state(child.pid) != "stopped" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _cli.process_state(child.pid) == "stopped"
        # Another process finds the file through /proc/PID/maps: our own
        # IOKERNEL_METRICS_DIR is not the child's.
        env = {"IOKERNEL_METRICS_DIR": "/nonexistent-elsewhere"}
        first = cli("metrics", str(child.pid), env=env)
        assert first.returncode == 0, first.stderr
        v1 = values(first.stdout)
        a = v1[("work_total", (("kind", "a"),))]
        b = v1[("work_total", (("kind", "b"),))]
        steps = v1[("step_seconds_count", ())]
        # SIGSTOP lands anywhere in the loop, also between its updates (seen
        # about once in 100 stops): the values are those of one point in
        # the program's order, a, then b, then the histogram.
        assert a >= 1000
        assert (b, steps) in {(2 * a, a), (2 * a, a - 1), (2 * a - 2, a - 1)}, (a, b, steps)
        assert 0 <= v1[("busy_workers", ())] < 7
        time.sleep(0.2)
        second = cli("metrics", str(child.pid), env=env)
        assert values(second.stdout) == v1, "a stopped writer's values must not move"
        top = cli("top", str(child.pid), "--once", "--interval", "0.2", "--no-admin", env=env)
        assert top.returncode == 0, top.stderr
        assert "stopped" in top.stdout and 'work_total{kind="a"}' in top.stdout
        st = cli("stacks", str(child.pid), "--timeout", "1")
        assert st.returncode == 1 and "is stopped" in st.stderr, st.stderr
    finally:
        os.kill(child.pid, signal.SIGCONT)
    # it moves again once continued
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        v3 = values(cli("metrics", str(child.pid)).stdout)
        if v3[("work_total", (("kind", "a"),))] > a:
            break
        time.sleep(0.05)
    else:
        pytest.fail("counter did not move after SIGCONT")
    # killed (no atexit): the file stays and is still readable by pid
    child.kill()
    assert Path(path).exists()
    dead = cli("metrics", str(child.pid), env={"IOKERNEL_METRICS_DIR": mdir})
    assert dead.returncode == 0, dead.stderr
    assert values(dead.stdout)[("work_total", (("kind", "a"),))] >= a
    os.unlink(path)
    gone = cli("metrics", str(child.pid), env={"IOKERNEL_METRICS_DIR": mdir})
    assert gone.returncode == 1 and "no metrics file" in gone.stderr


FORKER = """
    import os, sys
    from iokernel import metrics, _native
    c = metrics.counter("forked_total", "x")
    h = metrics.histogram("forked_seconds", "x", buckets=(1.0,))
    c.inc(5)
    h.observe(0.5)
    parent_path = metrics.path()
    pid = os.fork()
    if pid == 0:
        c.inc(100)
        h.observe(2.0)
        print("child", os.getpid(), metrics.path(), c.get(), flush=True)
        os._exit(0)  # no atexit: the child's file stays for the parent to read
    os.waitpid(pid, 0)
    c.inc(1)
    print("parent", os.getpid(), parent_path, metrics.path(), c.get(), flush=True)
"""


def test_fork_child_writes_its_own_file(mdir: str, children: list[Child]) -> None:
    child = Child(FORKER, mdir)
    children.append(child)
    cpid, cpath, cval = child.expect("child ").split()
    ppid, ppath_before, ppath_after, pval = child.expect("parent ").split()
    assert child.proc.wait(20) == 0, child.stderr()
    assert int(ppid) == child.pid and int(cpid) != child.pid
    assert ppath_before == ppath_after == str(Path(mdir) / f"{ppid}.metrics")
    assert cpath == str(Path(mdir) / f"{cpid}.metrics")
    # the child starts from zero in its own file
    assert float(cval) == 100
    assert float(pval) == 6  # 5 before the fork + 1 after: the child's 100 never reached it
    cv = values(_native.render_metrics(cpath))
    assert cv[("forked_total", ())] == 100
    assert cv[("forked_seconds_count", ())] == 1 and cv[("forked_seconds_sum", ())] == 2.0
    pid, _, _ = _native.read_metrics(cpath)
    assert pid == int(cpid)
    # the parent exited cleanly and removed its own file; the child's is left
    assert not Path(ppath_after).exists()


# ------------------------------------------- pick-up delay vs network time
def _hist(service: str, name: str) -> list[tuple[float, int]]:
    merged: dict[float, int] = {}
    for r in _native.read_metrics()[2]:
        if r["name"] == name and f'service="{service}"' in r["labels"]:
            for upper, n in r["buckets"]:
                merged[upper] = merged.get(upper, 0) + n
    return sorted(merged.items())


def _delta(a: list[tuple[float, int]], b: list[tuple[float, int]]) -> list[tuple[float, int]]:
    before = dict(a)
    return [(u, n - before.get(u, 0)) for u, n in b]


def test_busy_loop_raises_pickup_not_network_time(redis_url: str) -> None:
    from iokernel._top import quantile

    client = redis.AsyncClient(redis_url)
    svc = redis_url

    async def main() -> None:
        await client.ping()
        net0 = _hist(svc, "iokernel_network_seconds")
        pick0 = _hist(svc, "iokernel_pickup_seconds")
        for _ in range(3):
            answered = sum(n for _, n in _hist(svc, "iokernel_network_seconds"))
            tasks = [asyncio.ensure_future(client.get(f"k{i}")) for i in range(20)]
            await asyncio.sleep(0)  # let the tasks submit
            # The loop is busy (nothing is picked up) until the kernel has all
            # 20 replies, however long that takes on a busy machine, and then
            # 0.2 s more: each reply waits at least that long for pick-up.
            deadline = time.monotonic() + 30
            while sum(n for _, n in _hist(svc, "iokernel_network_seconds")) < answered + 20:
                assert time.monotonic() < deadline, "the replies never came"
                time.sleep(0.005)
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < 0.2:
                pass
            await asyncio.gather(*tasks)
        net = _delta(net0, _hist(svc, "iokernel_network_seconds"))
        pick = _delta(pick0, _hist(svc, "iokernel_pickup_seconds"))
        assert sum(n for _, n in net) >= 60, net
        assert sum(n for _, n in pick) >= 60, pick
        n50 = quantile(net, 0.5)
        p50 = quantile(pick, 0.5)
        assert n50 is not None and p50 is not None
        print(f"network p50 {n50[0] * 1e3:.3f} ms, pickup p50 {p50[0] * 1e3:.1f} ms")
        assert p50[0] > 0.1, pick
        assert p50[0] > 10 * n50[0], (net, pick)

    asyncio.run(main())
    asyncio.run(client.close())
