"""A TCP relay that holds back chosen connections, for timing faults in front
of a real server (the server stays real; only the network is scripted).

    with Relay(("127.0.0.1", pg_port), delay=lambda i: 0.0 if i == 0 else 0.4) as r:
        dsn = f"postgresql://...@127.0.0.1:{r.port}/app"

Connection ``i`` (0-based, in accept order) is connected upstream only after
``delay(i)`` seconds; then bytes flow both ways until either side closes,
unchanged unless ``rewrite_down(i, chunk) -> bytes`` is given: it sees every
chunk the server sends and returns what the client gets instead, or raises
``Cut`` to swallow the chunk and close both sides at once (the server got
the request, the client never hears the reply); ``watch_up(i, chunk)`` sees
every chunk the client sends, as it is forwarded. Bounded: at most ``max_conns`` connections, daemon threads, every
socket closed by ``stop()``.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from typing import Self

from tests.servers import LOOPBACK


class Cut(Exception):
    """Raised by ``rewrite_down``: drop this chunk and close the connection."""


class Proxy:
    """What a relay and the delay proxy (tests/faults/delay.py) share: a
    listener on loopback, a thread accepting on it (at most ``max_conns``
    connections, each served by ``_serve(i, client)`` in a thread of its
    own), and ``stop()`` closing every socket."""

    def __init__(self, upstream: tuple[str, int], *, host: str = LOOPBACK,
                 max_conns: int = 1 << 30, name: str = "proxy") -> None:
        self.upstream = upstream
        self.host = host
        self.max_conns = max_conns
        self.accepted = 0
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name=name, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)
        with self._lock:
            for s in [self._listener, *self._socks]:
                with contextlib.suppress(OSError):
                    s.close()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._socks += socks

    def _accept(self) -> None:
        while not self._stopped.is_set() and self.accepted < self.max_conns:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            i = self.accepted
            self.accepted += 1
            self._track(client)
            threading.Thread(target=self._serve, args=(i, client), daemon=True).start()

    def _serve(self, i: int, client: socket.socket) -> None:
        raise NotImplementedError


class Relay(Proxy):
    def __init__(self, upstream: tuple[str, int], *, delay: Callable[[int], float],
                 max_conns: int = 32,
                 rewrite_down: Callable[[int, bytes], bytes] | None = None,
                 watch_up: Callable[[int, bytes], None] | None = None) -> None:
        super().__init__(upstream, max_conns=max_conns, name="relay")
        self.watch_up = watch_up
        self.delay = delay
        self.rewrite_down = rewrite_down

    def _serve(self, i: int, client: socket.socket) -> None:
        wait = self.delay(i)
        if wait > 0 and self._stopped.wait(wait):
            return
        try:
            up = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            client.close()
            return
        up.settimeout(None)
        self._track(up)
        down = None
        if self.rewrite_down is not None:
            rw = self.rewrite_down
            def down(chunk: bytes) -> bytes:
                return rw(i, chunk)
        upward = None
        if self.watch_up is not None:
            wu = self.watch_up
            def upward(chunk: bytes) -> bytes:
                wu(i, chunk)
                return chunk
        threading.Thread(target=self._pump, args=(up, client, down), daemon=True).start()
        self._pump(client, up, upward)

    def _pump(self, src: socket.socket, dst: socket.socket,
              rewrite: Callable[[bytes], bytes] | None = None) -> None:
        deadline = time.monotonic() + 300  # bounded even if nobody calls stop()
        try:
            while time.monotonic() < deadline:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(rewrite(data) if rewrite else data)
        except Cut:
            for sock in (dst, src):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            return
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
