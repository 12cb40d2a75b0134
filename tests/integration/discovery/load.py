"""Continuous load for the discovery tests: N asyncio tasks each asking
``GET who`` in a loop (every server holds its own name under ``who``), with
when each request started and ended, which server answered, and every
error."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Load:
    client: Any
    tasks: int = 50
    pause: float = 0.0
    done: list[tuple[float, float, str]] = field(default_factory=list)
    errors: list[tuple[float, BaseException]] = field(default_factory=list)
    _stop: bool = False
    _running: list[asyncio.Task[None]] = field(default_factory=list)

    async def _one(self) -> None:
        while not self._stop:
            t0 = time.monotonic()
            try:
                v = await self.client.get("who")
            except Exception as e:  # every failure is recorded, none expected
                self.errors.append((t0, e))
                await asyncio.sleep(0.01)
                continue
            self.done.append((t0, time.monotonic(), v.decode() if v else "?"))
            if self.pause:
                await asyncio.sleep(self.pause)

    async def __aenter__(self) -> Load:
        self._running = [asyncio.create_task(self._one()) for _ in range(self.tasks)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop = True
        await asyncio.gather(*self._running)

    def started_after(self, t: float) -> list[tuple[float, float, str]]:
        return [d for d in self.done if d[0] >= t]

    def counts(self, since: float = 0.0) -> dict[str, int]:
        out: dict[str, int] = {}
        for _, _, who in self.started_after(since):
            out[who] = out.get(who, 0) + 1
        return out

    def settled_at(self, since: float, who: str) -> float | None:
        """The start time from which every request started (after `since`)
        was answered by `who`; None if the last one was not."""
        after = sorted(self.started_after(since))
        t = None
        for start, _, w in reversed(after):
            if w != who:
                break
            t = start
        return t


async def until(cond: Any, timeout: float, what: str, step: float = 0.02) -> float:
    """Wait (without blocking the loop) until cond() is true; the time it
    took. Fails naming `what` after `timeout` s."""
    t0 = time.monotonic()
    while True:
        if await asyncio.to_thread(cond) if getattr(cond, "blocking", False) else cond():
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)


def blocking(f: Any) -> Any:
    """Mark a condition for `until` that blocks (asks a server): run it in a thread."""
    f.blocking = True
    return f
