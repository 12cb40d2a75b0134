"""A minimal RESP client of its own (no iokernel, no redis-py): encode a
command, read RESP2/RESP3 replies, and send one command or a pipeline on a
fresh connection. Fixtures use it to flush and inspect a Redis server whatever
state the library under test is in.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any


def encode_command(args: Sequence[Any]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, bytes):
            b = a
        elif isinstance(a, str):
            b = a.encode()
        elif isinstance(a, (int, float)):
            b = repr(a).encode()
        else:
            raise TypeError(f"cannot encode {type(a).__name__} as a RESP bulk string")
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


class RespError(Exception):
    """An error reply (-ERR ...) from the server."""


class RespReader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def line(self) -> bytes:
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                out = bytes(self.buf[:i])
                del self.buf[: i + 2]
                return out
            self._fill()

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n + 2:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[: n + 2]
        return out

    def reply(self) -> Any:
        """One RESP2/RESP3 reply. Error replies are returned as RespError instances."""
        line = self.line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind in (b"$", b"="):
            n = int(rest)
            return None if n < 0 else self.exact(n)
        if kind in (b"*", b"~", b">"):
            n = int(rest)
            return None if n < 0 else [self.reply() for _ in range(n)]
        if kind == b"%":
            n = int(rest)
            return {self.reply(): self.reply() for _ in range(n)}
        if kind == b"_":
            return None
        if kind == b"#":
            return rest == b"t"
        if kind == b",":
            return float(rest)
        if kind == b"(":
            return int(rest)
        raise ValueError(f"unexpected RESP reply line {line!r}")


def resp_command(
    host: str,
    port: int,
    *args: Any,
    password: str | None = None,
    username: str | None = None,
    unix_path: str | None = None,
    timeout: float = 5.0,
) -> Any:
    """Send one command on a fresh connection and return the reply (raises RespError).

    Independent of iokernel on purpose: fixtures use it to flush and inspect
    the server whatever state the library under test is in.
    """
    return resp_pipeline(
        host, port, [args], password=password, username=username,
        unix_path=unix_path, timeout=timeout,
    )[0]


def resp_pipeline(
    host: str,
    port: int,
    commands: Sequence[Sequence[Any]],
    *,
    password: str | None = None,
    username: str | None = None,
    unix_path: str | None = None,
    timeout: float = 5.0,
) -> list[Any]:
    """Send several commands on one fresh connection; raise RespError on any error reply."""
    cmds: list[Sequence[Any]] = list(commands)
    if password is not None:
        cmds.insert(0, ("AUTH", username, password) if username else ("AUTH", password))
    if unix_path:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target: Any = unix_path
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        target = (host, port)
    with sock:
        sock.settimeout(timeout)
        sock.connect(target)
        sock.sendall(b"".join(encode_command(c) for c in cmds))
        reader = RespReader(sock)
        replies = [reader.reply() for _ in cmds]
    if password is not None:
        auth_reply = replies.pop(0)
        if isinstance(auth_reply, RespError):
            raise auth_reply
    for r in replies:
        if isinstance(r, RespError):
            raise r
    return replies
