"""bench/run.py goes on when one client's measurement fails.

valkey-glide raises its ``TimeoutError`` when the machine is loaded; the
run used to end there, losing every other row. Here glide's ``get`` is made
to raise glide's own ``TimeoutError`` partway through each measurement (the
other tasks still running), on a short real run against the test server:
the run must finish, record the failure for glide in that row, measure the
other clients, and list the failure in the report. Also: the worker
processes the run measures in (measuring.ClientProcesses) hand back results
and exceptions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.integration.bench_util import load_bench


def test_glide_timeout_is_recorded_and_the_run_goes_on(
    redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    glide = pytest.importorskip("glide")
    glide_timeout = glide.TimeoutError
    assert glide_timeout is not TimeoutError  # glide's own class, as in the field
    real_get = glide.GlideClient.get
    calls = {"n": 0}

    async def flaky_get(self: Any, key: Any) -> Any:
        calls["n"] += 1
        if calls["n"] % 400 == 0:
            raise glide_timeout("Request timed out (injected by the test)")
        return await real_get(self, key)

    monkeypatch.setattr(glide.GlideClient, "get", flaky_get)
    monkeypatch.setenv("IOKERNEL_BENCH_REDIS_URL", redis_url)
    # The patch is in this process: measure here, not in worker processes.
    monkeypatch.setenv("IOKERNEL_BENCH_IN_PROCESS", "1")
    out = tmp_path / "r.json"
    bench = load_bench("iok_bench_run", "run.py")
    rc = bench.main(["--only", "async-get-50-asyncio", "--loops", "asyncio", "--no-floor",
                     "--reps", "2", "--scale", "0.1", "--out", str(out),
                     "--plot", str(tmp_path / "r.png"), "-q"])
    assert rc == 0
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    clients = row["clients"]
    assert len(clients["glide"]["errors"]) == 2, clients["glide"]
    assert all("TimeoutError" in e for e in clients["glide"]["errors"])
    assert "median" not in clients["glide"]
    for peer in ("iokernel", "redis-py"):
        assert clients[peer]["errors"] == [] and clients[peer]["median"] > 0
    report = out.with_suffix(".md").read_text()
    assert "Failed measurements" in report and "glide: TimeoutError" in report
    assert (tmp_path / "r.png").exists()


def test_client_processes_run_each_call_in_a_fresh_process_and_hand_back_errors(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    monkeypatch.delenv("IOKERNEL_BENCH_IN_PROCESS", raising=False)
    measuring = load_bench("measuring", "measuring.py")
    with measuring.ClientProcesses(fresh=True) as w:
        a = w.call("x", os.getpid)
        b = w.call("x", os.getpid)
        assert os.getpid() not in (a, b) and a != b
        with pytest.raises(ValueError, match="invalid literal"):
            w.call("x", int, "not a number")
    with measuring.ClientProcesses() as w:
        assert w.call("y", os.getpid) == w.call("y", os.getpid), "kept for the run"
