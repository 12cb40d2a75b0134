"""The blocking benchmarks' shared pieces work and check what they measure:
``measuring.timed_threads`` runs every thread's share (one share: the calling
thread) and hands back a thread's exception; bench/pg_blocking.py's
measurement, against the test PostgreSQL, runs its calls with answers
checked for iokernel and psycopg and counts the client's connections; a
wrong answer ends the measurement with an error naming the client."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.integration.bench_util import load_bench

measuring = load_bench("measuring", "measuring.py")


def test_timed_threads_runs_every_share_and_raises_a_threads_error() -> None:
    done: list[tuple[str, int]] = []
    lock = threading.Lock()

    def body(n: int) -> None:
        with lock:
            done.append((threading.current_thread().name, n))

    clock = measuring.Clock()
    measuring.timed_threads(body, [5, 6, 7], 2, clock)
    shares = sorted(n for _, n in done)
    assert shares == [2, 2, 2, 5, 6, 7]  # three warm-ups, then each share
    assert clock.seconds >= 0

    done.clear()
    measuring.timed_threads(body, [4], 1, measuring.Clock())
    assert [n for _, n in done] == [1, 4]
    assert {name for name, _ in done} == {threading.current_thread().name}

    def failing(n: int) -> None:
        if n == 9:
            raise ValueError("share of 9 failed")

    with pytest.raises(ValueError, match="share of 9 failed"):
        measuring.timed_threads(failing, [3, 9], 1, measuring.Clock())


@pytest.mark.parametrize("client", ["iokernel", "psycopg"])
def test_pg_blocking_measures_with_answers_checked(pg_dsn: str, client: str) -> None:
    if client == "psycopg":
        pytest.importorskip("psycopg_pool")
    bench = load_bench("iok_pg_blocking", "pg_blocking.py")
    m = bench.measure(client, 3, 300, pg_dsn, None, f"iok-test-pgblk-{client}")
    assert m.ops == 300 and m.seconds > 0
    assert m.conns_server is not None and m.conns_server >= 1


def test_pg_blocking_names_the_client_on_a_wrong_answer(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    bench = load_bench("iok_pg_blocking2", "pg_blocking.py")
    real_open = bench._open

    def off_by_one(client: str, dsn: str, app: str, threads: int) -> Any:
        call, close = real_open(client, dsn, app, threads)
        return (lambda i: call(i) + 1), close

    monkeypatch.setattr(bench, "_open", off_by_one)
    with pytest.raises(AssertionError, match="iokernel: SELECT 0 \\+ 1 answered 2"):
        bench.measure("iokernel", 2, 20, pg_dsn, None, "iok-test-pgblk-wrong")
