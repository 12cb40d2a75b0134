"""A TCP proxy that adds a latency you can change while it runs, in front
of a real server: every chunk the server sends is passed on `delay`
seconds after it arrived (chunks keep their order and overlap, as on a slow
link, so pipelined replies are not serialised); what the client sends goes
through at once.

    with DelayProxy(("127.0.0.4", port)) as p:
        p.delay = 0.05        # every reply 50 ms later from now on
        addr = f"{p.host}:{p.port}"

Daemon threads, bounded lifetime, every socket closed by ``stop()``.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import subprocess
import sys
import threading
import time
from typing import Self

from tests.faults.relay import Proxy
from tests.servers import LOOPBACK

_LIFETIME = 600.0  # seconds: bounded even if nobody calls stop()


class DelayProxy(Proxy):
    def __init__(self, upstream: tuple[str, int], *, host: str = LOOPBACK) -> None:
        super().__init__(upstream, host=host, name="delay-proxy")
        self.delay = 0.0

    def _serve(self, i: int, client: socket.socket) -> None:
        try:
            up = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        up.settimeout(None)
        self._track(up)
        for src, dst, slow in ((client, up, False), (up, client, True)):
            q: queue.Queue[tuple[float, bytes]] = queue.Queue()
            threading.Thread(target=self._read, args=(src, q, slow), daemon=True).start()
            threading.Thread(target=self._write, args=(dst, q), daemon=True).start()

    def _read(self, src: socket.socket, q: queue.Queue[tuple[float, bytes]], slow: bool) -> None:
        with contextlib.suppress(OSError):
            while not self._stopped.is_set():
                data = src.recv(65536)
                if not data:
                    break
                q.put((time.monotonic() + (self.delay if slow else 0.0), data))
        q.put((0.0, b""))

    def _write(self, dst: socket.socket, q: queue.Queue[tuple[float, bytes]]) -> None:
        end = time.monotonic() + _LIFETIME
        with contextlib.suppress(OSError):
            while time.monotonic() < end:
                try:
                    due, data = q.get(timeout=1.0)
                except queue.Empty:
                    continue
                if not data:
                    break
                wait = due - time.monotonic()
                if wait > 0 and self._stopped.wait(wait):
                    break
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


class DelayProxyProcess:
    """`DelayProxy` in a process of its own (so that its threads do not
    compete for the GIL with the client under test):

        with DelayProxyProcess(("127.0.0.4", port)) as p:
            p.set_delay(0.05)
    """

    def __init__(self, upstream: tuple[str, int], *, host: str = LOOPBACK) -> None:
        self.host = host
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.delay", upstream[0], str(upstream[1]), host],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        assert self._proc.stdout is not None
        self.port = int(self._proc.stdout.readline())

    def set_delay(self, seconds: float) -> None:
        """Delay the server's bytes by `seconds` from when this returns."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{seconds}\n")
        self._proc.stdin.flush()
        assert self._proc.stdout.readline().strip() == "ok"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.kill()
        self._proc.wait(10)
        for f in (self._proc.stdin, self._proc.stdout):
            if f is not None:
                f.close()


def _serve(argv: list[str]) -> None:
    """Child: proxy to argv[0]:argv[1] on argv[2]; print the port; each
    line read is a new delay, answered with "ok"; stdin closed: stop."""
    with DelayProxy((argv[0], int(argv[1])), host=argv[2]) as p:
        print(p.port, flush=True)
        for line in sys.stdin:
            p.delay = float(line)
            print("ok", flush=True)


if __name__ == "__main__":
    _serve(sys.argv[1:])
