"""A blocking caller with few others waiting spins briefly for its reply
before it sleeps (src/kernel/spin_wait.rs), against a real redis-server:
quick replies, a slow one (which turns spinning off) and quick ones again
(which turn it back on) each reach their own caller, with the right value,
whether the caller was spinning or asleep when the reply came; so do two
threads spinning at once, and a process held to one CPU (where nobody
spins)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from iokernel import redis as iok


def test_quick_and_slow_replies_reach_a_lone_caller(redis_url: str) -> None:
    c = iok.Client(redis_url, timeout=30.0)
    try:
        for i in range(200):  # quick: most come while the caller spins
            c.set(f"lone:{i}", f"v{i}")
            assert c.get(f"lone:{i}") == f"v{i}".encode()
        # A slow reply: BLPOP on an empty list gives up after 0.2 s.
        assert c.blpop(["lone:empty"], timeout=0.2) is None
        assert c.get("lone:7") == b"v7"  # the next call still gets its own
        c.rpush("lone:list", "a", "b")
        assert c.blpop(["lone:list"], timeout=1) == (b"lone:list", b"a")
        for i in range(200):  # quick again
            assert c.incr("lone:n") == i + 1
    finally:
        c.close()


def test_two_spinning_threads_each_get_their_own_replies(redis_url: str) -> None:
    c = iok.Client(redis_url, timeout=30.0)
    errors: list[str] = []

    def run(t: int) -> None:
        try:
            for i in range(300):
                c.set(f"two:{t}:{i}", f"{t}-{i}")
                got = c.get(f"two:{t}:{i}")
                if got != f"{t}-{i}".encode():
                    errors.append(f"thread {t} call {i}: {got!r}")
                if c.incr(f"two:{t}:n") != i + 1:
                    errors.append(f"thread {t} incr {i}")
            # One thread's slow reply while the other keeps going.
            if t == 0 and c.blpop([f"two:{t}:empty"], timeout=0.2) is not None:
                errors.append("blpop on an empty list returned something")
        except Exception as e:  # reported below
            errors.append(f"thread {t}: {e!r}")

    threads = [threading.Thread(target=run, args=(t,)) for t in range(2)]
    try:
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert not any(th.is_alive() for th in threads), "a thread hung"
        assert errors == []
    finally:
        c.close()


CHILD = """
import os, sys
from iokernel import redis as iok
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
c = iok.Client(sys.argv[1], timeout=30.0)
for i in range(300):
    c.set(f"one:{i}", str(i))
    assert c.get(f"one:{i}") == str(i).encode(), i
c.close()
print("ok", len(os.sched_getaffinity(0)))
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs sched_setaffinity")
def test_a_process_held_to_one_cpu_gets_every_reply(redis_url: str) -> None:
    # One CPU: nobody spins (the spinner would hold off the kernel thread);
    # the calls must still all be answered, each with its own value.
    out = subprocess.run([sys.executable, "-c", CHILD, redis_url], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ok", "1"]
