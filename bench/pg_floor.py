"""The floor of pg_bench.py's executemany: the cheapest client there can be.

Both iokernel and asyncpg pipeline one Bind and one Execute per row with a
single Sync at the end, and the server spends a few µs of CPU on every row,
so both are bound by the server. This client measures how far that bound
is: a raw asyncio socket speaking the PostgreSQL v3 protocol itself, which
does everything it can *before* the timer (connect, authenticate, Parse the
statement with its parameter types, and encode every row's Bind, binary
parameters, and Execute, plus the Sync, into one byte string per batch).
Timed is only what no client can avoid: write those bytes, read until
ReadyForQuery, and check that the server answered every row with
BindComplete and CommandComplete "INSERT 0 1" (one comparison with the
expected bytes; a full parse only when they differ).

So its rows/s is the best any client can reach against this server, and
floor / asyncpg is the best ratio any client can show in this scenario.

Written for the benchmark, not a driver: trust, cleartext, md5 and
SCRAM-SHA-256 (no channel binding) authentication, parameters of types
int4, text and float8, no TLS.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import struct
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

# Parameter type OIDs and their binary encoders.
INT4, TEXT, FLOAT8 = 23, 25, 701
_I32 = struct.Struct("!i")
_ENCODE: dict[int, Callable[[Any], bytes]] = {
    INT4: _I32.pack,
    TEXT: lambda v: str(v).encode(),
    FLOAT8: struct.Struct("!d").pack,
}

SYNC = b"S\x00\x00\x00\x04"
EXECUTE = b"E\x00\x00\x00\x09\x00\x00\x00\x00\x00"  # unnamed portal, all rows
BIND_COMPLETE = b"2\x00\x00\x00\x04"
INSERTED = b"C\x00\x00\x00\x0fINSERT 0 1\x00"
READY_IDLE = b"Z\x00\x00\x00\x05I"


class ServerError(Exception):
    """An ErrorResponse, or a reply the floor did not expect."""


def _msg(kind: bytes, body: bytes) -> bytes:
    return kind + _I32.pack(len(body) + 4) + body


def _cstr(s: str) -> bytes:
    return s.encode() + b"\x00"


def _error_text(body: bytes) -> str:
    fields = {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\x00") if f}
    return f"{fields.get(b'S', 'ERROR')} {fields.get(b'C', '?')}: {fields.get(b'M', '')}"


def _messages(buf: bytes | bytearray) -> list[tuple[bytes, bytes]]:
    """The complete messages at the start of buf (kind, body)."""
    out, i, n = [], 0, len(buf)
    while i + 5 <= n:
        end = i + 1 + _I32.unpack_from(buf, i + 1)[0]
        if end > n:
            break
        out.append((bytes(buf[i:i + 1]), bytes(buf[i + 5:end])))
        i = end
    return out


class _Wire(asyncio.Protocol):
    """Bytes in, kept in one buffer; a waiter woken when a condition on it holds."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self._want: Callable[[], bool] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if self._want is not None and self._want():
            self._wake(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = exc or ConnectionResetError("PostgreSQL closed the connection")
        self._wake(self._lost)

    def _wake(self, exc: BaseException | None) -> None:
        w, self._want, self._waiter = self._waiter, None, None
        if w is not None and not w.done():
            if exc is None:
                w.set_result(None)
            else:
                w.set_exception(exc)

    async def until(self, want: Callable[[], bool]) -> None:
        if want():
            return
        if self._lost is not None:
            raise self._lost
        self._want = want
        self._waiter = asyncio.get_running_loop().create_future()
        await self._waiter

    def _has_message(self) -> bool:
        b = self.buf
        return len(b) >= 5 and len(b) >= 1 + _I32.unpack_from(b, 1)[0]

    async def message(self) -> tuple[bytes, bytes]:
        await self.until(self._has_message)
        end = 1 + _I32.unpack_from(self.buf, 1)[0]
        kind, body = bytes(self.buf[:1]), bytes(self.buf[5:end])
        del self.buf[:end]
        if kind == b"E":
            raise ServerError(_error_text(body))
        return kind, body


class FloorConnection:
    """One connection: startup and authentication, Parse, then pre-encoded batches."""

    def __init__(self) -> None:
        self.wire = _Wire()
        self.statement = b""
        self.types: tuple[int, ...] = ()

    async def connect(self, dsn: str, app: str) -> None:
        u = urlsplit(dsn)
        user = unquote(u.username or "postgres")
        password = unquote(u.password or "")
        params = {"user": user, "database": unquote(u.path.lstrip("/")) or user,
                  "application_name": app, "client_encoding": "UTF8"}
        loop = asyncio.get_running_loop()
        await loop.create_connection(lambda: self.wire, u.hostname or "127.0.0.1",
                                     u.port or 5432)
        body = _I32.pack(196608) + b"".join(_cstr(k) + _cstr(v) for k, v in params.items())
        self._write(_I32.pack(len(body) + 5) + body + b"\x00")
        await self._authenticate(user, password)
        while (await self.wire.message())[0] != b"Z":
            pass  # ParameterStatus, BackendKeyData

    def _write(self, data: bytes) -> None:
        assert self.wire.transport is not None
        self.wire.transport.write(data)

    async def _authenticate(self, user: str, password: str) -> None:
        scram: _Scram | None = None
        while True:
            kind, body = await self.wire.message()
            if kind != b"R":
                raise ServerError(f"expected an authentication request, got {kind!r}")
            code = _I32.unpack_from(body)[0]
            if code == 0:
                return
            if code == 3:  # cleartext
                self._write(_msg(b"p", _cstr(password)))
            elif code == 5:  # md5(md5(password + user) + salt)
                inner = hashlib.md5((password + user).encode()).hexdigest()
                outer = hashlib.md5(inner.encode() + body[4:8]).hexdigest()
                self._write(_msg(b"p", _cstr("md5" + outer)))
            elif code == 10:  # SASL: mechanisms offered
                if b"SCRAM-SHA-256\x00" not in body[4:]:
                    raise ServerError(f"no SASL mechanism the floor speaks in {body[4:]!r}")
                scram = _Scram(password)
                first = scram.first()
                self._write(_msg(b"p", _cstr("SCRAM-SHA-256") + _I32.pack(len(first)) + first))
            elif code == 11 and scram is not None:  # SASL continue: server-first
                self._write(_msg(b"p", scram.final(body[4:])))
            elif code == 12 and scram is not None:  # SASL final: server signature
                scram.verify(body[4:])
            else:
                raise ServerError(f"authentication request {code} not supported")

    async def prepare(self, sql: str, types: Sequence[int], name: str = "floor") -> None:
        """Parse the statement as a named prepared statement with these parameter types."""
        self.statement, self.types = name.encode(), tuple(types)
        self._write(_msg(b"P", _cstr(name) + _cstr(sql) + struct.pack(
            f"!h{len(types)}i", len(types), *types)) + SYNC)
        got = [await self.wire.message(), await self.wire.message()]
        if [k for k, _ in got] != [b"1", b"Z"]:
            raise ServerError(f"Parse answered {got!r}")

    def encode(self, rows: Sequence[Sequence[Any]]) -> bytes:
        """Bind (all parameters binary, no result columns) + Execute per row, one Sync."""
        n = len(self.types)
        head = b"\x00" + self.statement + b"\x00" + struct.pack(f"!h{n}hh", n, *[1] * n, n)
        enc = [_ENCODE[t] for t in self.types]
        out = []
        for row in rows:
            parts = [head]
            for f, v in zip(enc, row):
                if v is None:
                    parts.append(b"\xff\xff\xff\xff")
                else:
                    b = f(v)
                    parts.append(_I32.pack(len(b)) + b)
            parts.append(b"\x00\x00")
            body = b"".join(parts)
            out.append(b"B" + _I32.pack(len(body) + 4) + body + EXECUTE)
        out.append(SYNC)
        return b"".join(out)

    async def send(self, data: bytes, rows: int) -> None:
        """Write one pre-encoded batch of `rows` rows; return once every row is in."""
        wire = self.wire
        wire.buf.clear()
        expected = (BIND_COMPLETE + INSERTED) * rows + READY_IDLE
        self._write(data)
        while True:
            # Cheap test on every read: does the stream end like a ReadyForQuery?
            await wire.until(lambda: wire.buf[-6:-1] == READY_IDLE[:5])
            if wire.buf == expected:
                return
            msgs = _messages(wire.buf)
            if not msgs or msgs[-1][0] != b"Z":
                continue  # it only looked like the end: keep reading
            errors = [_error_text(b) for k, b in msgs if k == b"E"]
            done = sum(1 for k, b in msgs if k == b"C" and b == b"INSERT 0 1\x00")
            if errors or done != rows:
                raise ServerError(f"{done} of {rows} rows answered INSERT 0 1 (then rolled "
                                  f"back); errors: {errors[:3]}")
            return

    def close(self) -> None:
        if self.wire.transport is not None:
            self.wire.transport.write(b"X\x00\x00\x00\x04")
            self.wire.transport.close()


class _Scram:
    """SCRAM-SHA-256 (RFC 5802, 7677), client side, without channel binding.

    PostgreSQL takes the user name from the startup message, so the SCRAM one
    is left empty, as libpq does. The password is used as given (no SASLprep:
    the bench's passwords are ASCII)."""

    def __init__(self, password: str) -> None:
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.bare = f"n=,r={self.nonce}"

    def first(self) -> bytes:
        return f"n,,{self.bare}".encode()

    def final(self, server_first: bytes) -> bytes:
        attrs = dict(a.split("=", 1) for a in server_first.decode().split(","))
        if not attrs["r"].startswith(self.nonce):
            raise ServerError("SCRAM: the server's nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self.password, base64.b64decode(attrs["s"]),
                                     int(attrs["i"]))
        without_proof = f"c=biws,r={attrs['r']}"  # biws = base64("n,,")
        self.auth = f"{self.bare},{server_first.decode()},{without_proof}".encode()
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        signature = hmac.digest(hashlib.sha256(client_key).digest(), self.auth, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_key = hmac.digest(salted, b"Server Key", "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()

    def verify(self, server_final: bytes) -> None:
        want = base64.b64encode(hmac.digest(self.server_key, self.auth, "sha256")).decode()
        if server_final.decode() != f"v={want}":
            raise ServerError("SCRAM: the server's signature does not match")
