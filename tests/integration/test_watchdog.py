"""The watchdog: replies that wait too long for a blocked event loop are
counted, and logged (with the stacks of that moment) once the loop runs."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from iokernel import _native, admin, redis


def _stalls() -> float:
    _, _, series = _native.read_metrics()
    return sum(s["value"] for s in series if s["name"] == "iokernel_stalls_total")


def test_blocked_loop_is_noticed_and_logged(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    ar = redis.AsyncClient(redis_url)
    assert admin.address() is not None, "the endpoint (and its watchdog) start with the first client"
    before = _stalls()

    def blocking_section() -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.8:  # longer than the 1 s default threshold
            pass

    async def main() -> bytes | None:
        pending = ar.get("wd")  # sent now; the reply arrives while the loop is blocked
        blocking_section()
        return await pending

    with caplog.at_level(logging.WARNING, logger="iokernel"):
        assert asyncio.run(main()) is None
    msgs = [r.getMessage() for r in caplog.records if r.name == "iokernel"]
    assert any("for Python to pick them up" in m for m in msgs), msgs
    assert any("blocking_section" in m for m in msgs), "the log carries the stacks of that moment"
    assert _stalls() >= before + 1


def test_busy_loop_without_pending_replies_is_not_a_stall(redis_url: str,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    ar = redis.AsyncClient(redis_url)

    async def main() -> None:
        await ar.get("wd")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.5:
            pass
        await ar.get("wd")

    before = _stalls()
    with caplog.at_level(logging.WARNING, logger="iokernel"):
        asyncio.run(main())
    assert _stalls() == before
    assert not [r for r in caplog.records if "pick them up" in r.getMessage()]
