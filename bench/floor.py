"""The floor: what it costs asyncio to await a future resolved by another thread.

No I/O at all. A Python thread stands in for the I/O kernel: asyncio tasks
hand it futures, it takes them in batches (everything submitted since it last
looked) and resolves them back on the event loop. Whatever iokernel costs per
operation above this floor is the kernel's own overhead (Python wrapper,
native submission, completion delivery, plus the real network round trip).

Three ways of getting the batch back onto the loop:

* ``threadsafe``: ``loop.call_soon_threadsafe(resolve, batch)`` (the loop's
  self-pipe; what most thread-to-asyncio bridges do);
* ``eventfd``: the thread appends the batch to a deque and writes an eventfd
  that the loop watches with ``add_reader``; the reader drains every batch in
  one callback (how iokernel's completer delivers);
* ``same-thread``: no helper thread; the loop resolves the batch itself from a
  ``call_soon`` callback. Pure asyncio cost, the lowest possible, shown for
  reference.

The stand-in thread sleeps in a blocking eventfd read (GIL released) when it
has nothing to do, and is woken only when it is asleep, so a busy loop pays
no system call per submission.
"""

from __future__ import annotations

import asyncio
import collections
import os
import threading
from typing import Any

MODES = ("threadsafe", "eventfd", "same-thread")
VALUE = b"v" * 16


def _resolve(batch: list[asyncio.Future[Any]]) -> None:
    for f in batch:
        if not f.done():
            f.set_result(VALUE)


class FloorKernel:
    """Resolves submitted futures in batches, from a helper thread (or not)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"floor mode must be one of {MODES}, not {mode!r}")
        self.loop = loop
        self.mode = mode
        self.pending: list[asyncio.Future[Any]] = []
        self.batches = 0
        self._sleeping = False
        self._stop = False
        self._flush_scheduled = False
        self._thread: threading.Thread | None = None
        self._wake = -1
        self._loop_fd = -1
        self._done: collections.deque[list[asyncio.Future[Any]]] = collections.deque()
        if mode == "same-thread":
            return
        self._wake = os.eventfd(0)
        if mode == "eventfd":
            self._loop_fd = os.eventfd(0, os.EFD_NONBLOCK)
            loop.add_reader(self._loop_fd, self._drain)
        self._thread = threading.Thread(target=self._run, name="floor-kernel", daemon=True)
        self._thread.start()

    # -- loop side
    def get(self, _key: Any = None) -> asyncio.Future[Any]:
        """Submit one 'request': a future the helper resolves with a small bytes value."""
        fut = self.loop.create_future()
        self.pending.append(fut)
        if self.mode == "same-thread":
            if not self._flush_scheduled:
                self._flush_scheduled = True
                self.loop.call_soon(self._flush_same_thread)
        elif self._sleeping:
            self._sleeping = False
            os.eventfd_write(self._wake, 1)
        return fut

    def _flush_same_thread(self) -> None:
        self._flush_scheduled = False
        batch, self.pending = self.pending, []
        self.batches += 1
        _resolve(batch)

    def _drain(self) -> None:
        try:
            os.eventfd_read(self._loop_fd)
        except BlockingIOError:
            pass
        done = self._done
        while done:
            _resolve(done.popleft())

    # -- helper thread
    def _run(self) -> None:
        while not self._stop:
            batch = self.pending
            if not batch:
                # Dekker-style handshake under the GIL: announce sleep, re-check.
                self._sleeping = True
                if self.pending or self._stop:
                    self._sleeping = False
                    continue
                os.eventfd_read(self._wake)  # blocks with the GIL released
                continue
            self.pending = []
            self.batches += 1
            if self.mode == "threadsafe":
                self.loop.call_soon_threadsafe(_resolve, batch)
            else:
                self._done.append(batch)
                os.eventfd_write(self._loop_fd, 1)

    def close(self) -> None:
        self._stop = True
        if self._thread is not None:
            os.eventfd_write(self._wake, 1)
            self._thread.join(5)
            os.close(self._wake)
        if self._loop_fd >= 0:
            self.loop.remove_reader(self._loop_fd)
            os.close(self._loop_fd)
