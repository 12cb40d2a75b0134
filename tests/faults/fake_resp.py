"""The fake Redis server's RESP: parse_command (a client command, RESP array or
inline, with size limits; FrameError on a malformed frame), encode_command, and
the reply builders bulk, simple, error and integer.
"""

from __future__ import annotations

MAX_ARGS = 1024 * 1024
MAX_BULK = 64 * 1024 * 1024
MAX_INLINE = 64 * 1024


# -------------------------------------------------------------- RESP helpers
class FrameError(Exception):
    pass


def parse_command(buf: bytes | bytearray, start: int = 0) -> tuple[list[bytes], int] | None:
    """Parse one client command (RESP array of bulk strings, or an inline command).

    Returns (argv, end offset) or None if more bytes are needed. Raises
    FrameError on malformed or oversized input.
    """
    n = len(buf)
    if start >= n:
        return None
    if buf[start] != ord("*"):
        end = buf.find(b"\n", start)
        if end < 0:
            if n - start > MAX_INLINE:
                raise FrameError("inline command too long")
            return None
        line = bytes(buf[start:end]).rstrip(b"\r")
        return line.split(), end + 1

    def read_line(pos: int) -> tuple[bytes, int] | None:
        end = buf.find(b"\r\n", pos)
        if end < 0:
            if n - pos > 64:
                raise FrameError("header line too long")
            return None
        return bytes(buf[pos:end]), end + 2

    got = read_line(start + 1)
    if got is None:
        return None
    header, pos = got
    try:
        count = int(header)
    except ValueError:
        raise FrameError(f"bad array length {header!r}") from None
    if count < 0 or count > MAX_ARGS:
        raise FrameError(f"array length {count} out of range")
    argv: list[bytes] = []
    for _ in range(count):
        if pos >= n:
            return None
        if buf[pos] != ord("$"):
            raise FrameError(f"expected bulk string, got {bytes(buf[pos:pos + 1])!r}")
        got = read_line(pos + 1)
        if got is None:
            return None
        header, pos = got
        try:
            size = int(header)
        except ValueError:
            raise FrameError(f"bad bulk length {header!r}") from None
        if size < 0 or size > MAX_BULK:
            raise FrameError(f"bulk length {size} out of range")
        if n < pos + size + 2:
            return None
        if buf[pos + size:pos + size + 2] != b"\r\n":
            raise FrameError("bulk string not terminated by CRLF")
        argv.append(bytes(buf[pos:pos + size]))
        pos += size + 2
    return argv, pos


def encode_command(*args: bytes | str | int) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(parts)


def bulk(b: bytes | None, proto: int = 2) -> bytes:
    if b is None:
        return b"_\r\n" if proto == 3 else b"$-1\r\n"
    return b"$%d\r\n%s\r\n" % (len(b), b)


def simple(s: str) -> bytes:
    return b"+" + s.encode() + b"\r\n"


def error(s: str) -> bytes:
    return b"-" + s.encode() + b"\r\n"


def integer(i: int) -> bytes:
    return b":%d\r\n" % i
