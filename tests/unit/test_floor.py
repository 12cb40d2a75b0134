"""The blocking floor (`iokernel._native._floor_call`, src/python/core/floor.rs):
the no-I/O stand-in that bench/run.py measures beside its blocking rows.
Each call is answered by a helper thread and waited for the way a blocking
iokernel call waits (spinning or not); here: every call from many threads
comes back, and a
forked child (where the parent's helper thread does not exist) gets a
helper of its own instead of waiting forever."""

from __future__ import annotations

import os
import signal
import threading
import time

from iokernel import _native

floor_call = _native._floor_call  # type: ignore[attr-defined]


def test_every_call_from_many_threads_is_answered() -> None:
    threads, calls = 8, 200
    done = [0] * threads
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for _ in range(calls):  # half the threads never spin
                assert floor_call(spin=i % 2 == 0) is None
                done[i] += 1
        except BaseException as e:  # handed to the test thread
            errors.append(e)

    ts = [threading.Thread(target=work, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
        assert not t.is_alive(), "a floor call was never answered"
    assert errors == []
    assert done == [calls] * threads


def test_a_forked_child_gets_a_helper_of_its_own() -> None:
    floor_call()  # the parent's helper thread is running
    pid = os.fork()
    if pid == 0:  # the child: only this thread was copied
        try:
            for _ in range(10):
                floor_call()
        except BaseException:
            os._exit(1)
        os._exit(0)
    end = time.monotonic() + 60
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got:
            break
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child's floor call never came back")
        time.sleep(0.01)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
